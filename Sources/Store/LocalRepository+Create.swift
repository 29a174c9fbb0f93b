import Archive
import FoundationEssentials
import OCI
import UDockerSystem
#if canImport(Glibc)
import Glibc
#endif

extension LocalRepository {
    /// `create`: flattens the image's layers into a new container and returns its id.
    ///
    /// The container is assembled under `containers/.creating-<id>` and renamed into place only when
    /// every layer was extracted and its DiffID matched the image config, so an interrupted or failed
    /// create never leaves a container that `ps` lists. The repository lock is held shared while the
    /// layers are read, so `rmi` cannot remove them underneath.
    public func createContainer(
        from image: LocalImageName, name: String? = nil,
        warn: (OutputWarning) -> Void = { _ in }
    ) throws -> String {
        try publishNewContainer(from: image, name: name) { contents, staging in
            try syscall("mkdir", path: "\(staging)/ROOT") { mkdir("\(staging)/ROOT", 0o755) }
            let extractor = try LayerExtractor(root: "\(staging)/ROOT")
            var diffIDs: [Digest] = []
            for layer in contents.layerFiles {
                let record = contents.isV2 ? nil : V1LayerRecord(layerFile: layer)
                try record?.checkSize(of: layer)
                do { diffIDs.append(try extractor.extract(layerAt: layer)) } catch {
                    throw StoreError(
                        BlobEviction.explain(
                            "layer \(PathName.lastComponent(layer)): \(error)",
                            layerFile: layer, layersDirectory: layersDirectory), cause: error)
                }
                try record?.checkDigest(of: layer, diffID: diffIDs.last!)
                Output().progress(.layerExtracted(index: diffIDs.count, count: contents.layerFiles.count, files: extractor.entriesApplied))
            }
            // Device nodes are expected in rootfs layers and cannot be made rootless: one line.
            let devices = extractor.warnings.filter(\.isDeviceNode)
            if !devices.isEmpty { warn(.deviceNodesSkipped(count: devices.count)) }
            for w in extractor.warnings where !w.isDeviceNode { warn(w) }
            if contents.isV2, let config = try? JSONDecoder().decode(ImageConfig.self, from: Data(contents.configBytes)),
                let expected = config.rootfs?.diffIDs, !expected.isEmpty, expected != diffIDs
            {
                let notes = zip(contents.layerFiles, zip(expected, diffIDs)).filter { $0.1.0 != $0.1.1 }
                    .compactMap { BlobEviction.evictIfCorrupt($0.0, layersDirectory: layersDirectory) }
                throw StoreError(
                    (["layer content does not match the image config (rootfs.diff_ids): the image is corrupt; pull it again"] + notes)
                        .joined(separator: "; "), kind: .corrupt)
            }
        }
    }

    /// The skeleton every `create` shares: validate the alias, then, holding the repository lock
    /// shared, let `populate` fill `containers/.creating-<id>`, write `imagerepo.name` and
    /// `container.json`, and rename it into place; any failure removes the staging directory.
    /// The alias is set last (a clash removes the new container again).
    func publishNewContainer(
        from image: LocalImageName, name: String?,
        _ populate: (ImageContents, String) throws -> Void
    ) throws -> String {
        if let name {
            try Self.validateName(name)
            if FileInfo.exists("\(containersDirectory)/\(name)") { throw StoreError("container name already exists: \(name)") }
        }
        let id = Self.newContainerID()
        try withLock(.shared) {
            let contents = try imageContents(image)
            // Locked while it is filled: a create killed meanwhile leaves a staging directory that
            // the next command taking the repository lock removes (`removeAbandonedStaging`).
            let staging = try StagingDirectory(in: containersDirectory, prefix: "creating-\(id)", mode: 0o755)
            defer { staging.discard() }
            try populate(contents, staging.path)
            try ContainerMetadata.writeOrigin(image: "\(image.name):\(image.tag)", config: contents.configBytes, directory: staging.path)
            try syscall("rename", path: containerDirectory(id)) { rename(staging.path, containerDirectory(id)) }
        }
        if let name {
            do { try setContainerName(id, name) } catch {
                try? removeContainer(id)
                throw error
            }
        }
        return id
    }
}

/// What `import` (ours or udocker's `create_container_meta`) recorded about a v1 layer in its
/// `<id>.json`: the file's size and `rootfs.diff_ids` (ours: the DiffID of the tar; udocker's: the
/// SHA-256 of the layer file). A layer file changed since the import is refused at create.
struct V1LayerRecord {
    var size: Int64?
    var digest: String?

    /// A JSON number as an integer (a fraction cut off), as `NSNumber.int64Value` read it.
    static func integer(_ value: Any?) -> Int64? {
        switch value {
        case let i as Int: return Int64(i)
        case let d as Double where d.isFinite && abs(d) < 9.2e18: return Int64(d)
        default: return nil
        }
    }

    init?(layerFile: String) {
        guard layerFile.hasSuffix(".layer"), let bytes = AtomicFile.read(String(layerFile.dropLast(6)) + ".json"),
            let obj = JSONAny.object(bytes)
        else { return nil }
        size = Self.integer(obj["size"]).flatMap { $0 > 0 ? $0 : nil }
        let ids = (obj["rootfs"] as? [String: Any])?["diff_ids"] as? [String]
        digest = ids?.count == 1 ? ids?.first : nil
        if size == nil && digest == nil { return nil }
    }

    func changed(_ layer: String, _ why: String) -> StoreError {
        StoreError(
            "layer \(PathName.lastComponent(layer)) changed since it was imported (\(why)): remove the image and import it again")
    }

    func checkSize(of layer: String) throws {
        if let size, let actual = FileInfo.size(layer), actual != size { throw changed(layer, "\(actual) bytes, recorded \(size)") }
    }

    func checkDigest(of layer: String, diffID: Digest) throws {
        guard let digest, digest != diffID.description else { return }
        if let file = try? LocalRepository.sha256(ofFile: layer), file.description == digest { return }
        throw changed(layer, "its digest is not the recorded \(digest)")
    }
}
