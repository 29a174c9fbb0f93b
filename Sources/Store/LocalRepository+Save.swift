import Archive
import FoundationEssentials
import OCI
import UDockerSystem
#if canImport(Glibc)
import Glibc
#endif

extension LocalRepository {
    /// `save`: writes the images as a docker-archive in the classic `docker save` layout, the one
    /// every reader accepts (`docker load`, `podman load`, skopeo `docker-archive:`, and the Python
    /// udocker, which needs the per-layer `json`/`VERSION` files and `repositories`):
    ///
    ///     <id>/layer.tar  <id>/json  <id>/VERSION     one per layer, uncompressed (sha256 = diff_id)
    ///     <sha256 of config>.json                      the image config, rootfs.diff_ids filled in
    ///     manifest.json   repositories
    ///
    /// Layer ids chain the diff_ids (`sha256(parent id + " " + diff_id)`), so two images that share
    /// a base share its directories. Every layer is read twice (size and diff_id first, then the
    /// copy). The repository lock is held (shared) only while the images' files are opened: the
    /// stream, which may be as slow as the pipe it goes to, reads the open files
    /// (`/proc/self/fd/N`), so an `rmi` or a pull meanwhile neither waits nor pulls a layer from
    /// under it. Without `/proc` the lock is held for the whole stream, as before.
    public func saveImages(_ images: [LocalImageName], to fd: Int32, info: (String) -> Void = { _ in }) throws {
        guard access("/proc/self/fd", F_OK) == 0 else {
            return try withLock(.shared) { try saveImages(try images.map { ($0, try imageContents($0)) }, to: fd, names: [:], info: info) }
        }
        var opened: [Int32] = []
        var names: [String: String] = [:]
        defer { for f in opened { close(f) } }
        let pinned = try withLock(.shared) {
            try images.map { image -> (LocalImageName, ImageContents) in
                var contents = try imageContents(image)
                contents.layerFiles = try contents.layerFiles.map { path in
                    let f = try syscall("open", path: path) { open(path, O_RDONLY | O_CLOEXEC) }
                    opened.append(f)
                    names["/proc/self/fd/\(f)"] = PathName.lastComponent(path)
                    return "/proc/self/fd/\(f)"
                }
                return (image, contents)
            }
        }
        try saveImages(pinned, to: fd, names: names, info: info)
    }

    /// `names`: the layer file names to show for the `/proc/self/fd/N` paths.
    private func saveImages(
        _ images: [(LocalImageName, ImageContents)], to fd: Int32, names: [String: String],
        info: (String) -> Void
    ) throws {
        do {
            let writer = TarWriter(fileDescriptor: fd)
            var written = Set<String>()
            var manifest: [[String: Any]] = []
            var repositories: [String: [String: String]] = [:]
            for (image, contents) in images {
                var summaries: [LayerSummary] = []
                for layer in contents.layerFiles {
                    do { summaries.append(try LayerInspector.inspect(path: layer)) } catch {
                        throw StoreError(
                            "image \(image): layer \(names[layer] ?? PathName.lastComponent(layer)) is corrupt: \(error)", kind: .corrupt,
                            cause: error)
                    }
                }
                let diffIDs = summaries.map(\.diffID)
                let config = try Self.configForSave(contents.configBytes, diffIDs: diffIDs)
                let configName = "\(Digest.sha256(of: config).hex).json"
                var ids: [String] = []
                var parent: String?
                for (i, layer) in contents.layerFiles.enumerated() {
                    let id = parent.map { Digest.sha256(of: Array("\($0) \(diffIDs[i])".utf8)).hex } ?? diffIDs[i].hex
                    ids.append(id)
                    if written.insert(id).inserted {
                        try writer.addDirectory(name: id)
                        try writer.addFile(name: "\(id)/VERSION", bytes: Array("1.0".utf8))
                        var json: [String: Any] = [
                            "id": id, "created": "1970-01-01T00:00:00Z", "os": "linux",
                            "container_config": ["Hostname": "", "Cmd": JSONNull.null],
                        ]
                        if let parent { json["parent"] = parent }
                        try writer.addFile(
                            name: "\(id)/json", bytes: try JSONAny.serialize(json))
                        let d = try writer.addDecompressedFile(
                            name: "\(id)/layer.tar", sourcePath: layer, size: summaries[i].uncompressedSize)
                        guard d == diffIDs[i] else { throw StoreError("image \(image): layer \(id) changed while it was saved") }
                    }
                    parent = id
                }
                if written.insert(configName).inserted { try writer.addFile(name: configName, bytes: config) }
                let tag = "\(image.name):\(image.tag)"
                manifest.append([
                    "Config": configName, "RepoTags": image.tag.contains(":") ? [] : [tag],
                    "Layers": ids.map { "\($0)/layer.tar" },
                ])
                if !image.tag.contains(":"), let top = ids.last { repositories[image.name, default: [:]][image.tag] = top }
                info("saved image: \(image)")
            }
            try writer.addFile(
                name: "manifest.json", bytes: try JSONAny.serialize(manifest))
            try writer.addFile(
                name: "repositories", bytes: try JSONAny.serialize(repositories))
            try writer.finish()
        }
    }

    /// The config as written into the archive: the stored bytes when their `rootfs.diff_ids` are
    /// right (so the image id is kept), else a copy with `rootfs` (and `os`/`architecture`) set.
    static func configForSave(_ bytes: [UInt8], diffIDs: [Digest]) throws -> [UInt8] {
        if let cfg = try? JSONDecoder().decode(ImageConfig.self, from: Data(bytes)), cfg.rootfs?.diffIDs == diffIDs,
            cfg.os != nil, cfg.architecture != nil
        {
            return bytes
        }
        guard var obj = JSONAny.object(bytes) else {
            throw StoreError("the image config is not a JSON object")
        }
        obj["rootfs"] = ["type": "layers", "diff_ids": diffIDs.map(\.description)]
        if obj["os"] == nil { obj["os"] = "linux" }
        if obj["architecture"] == nil { obj["architecture"] = Platform.host.architecture }
        if obj["config"] == nil, let cc = obj["container_config"] { obj["config"] = cc }
        // v1 metadata written by import carries layer fields that do not belong in a config.
        for k in ["id", "parent", "size", "Size"] { obj[k] = nil }
        return try JSONAny.serialize(obj)
    }
}
