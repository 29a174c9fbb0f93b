import CLinux
import FoundationEssentials
import OCI
import UDockerSystem
#if canImport(Glibc)
import Glibc
#endif

/// What `create` and `run` need from an image: its config and its layer files, base first.
public struct ImageContents: Sendable {
    public var configBytes: [UInt8]
    public var layerFiles: [String]
    public var isV2: Bool
}

public struct ImageListing: Sendable, Hashable {
    public var image: LocalImageName
    public var protected: Bool
    public var directory: String
}

extension LocalRepository {
    public func tagDirectory(_ image: LocalImageName) -> String { "\(reposDirectory)/\(image.name)/\(image.tag)" }

    public func imageExists(_ image: LocalImageName) -> Bool {
        FileInfo.isRegularFile("\(tagDirectory(image))/TAG")
    }

    /// Every tag directory below `repos/` (a directory that holds a `TAG` file), sorted by name.
    public func listImages() -> [ImageListing] {
        var out: [ImageListing] = []
        func walk(_ dir: String, _ rel: String) {
            for entry in FileInfo.list(dir).sorted() where !entry.hasPrefix(".") {
                let path = "\(dir)/\(entry)"
                guard FileInfo.isDirectory(path), !FileInfo.isSymlink(path) else { continue }
                if FileInfo.isRegularFile("\(path)/TAG"), !rel.isEmpty {
                    out.append(
                        ImageListing(
                            image: LocalImageName(name: rel, tag: entry),
                            protected: FileInfo.exists("\(path)/PROTECT"), directory: path))
                } else {
                    walk(path, rel.isEmpty ? entry : "\(rel)/\(entry)")
                }
            }
        }
        walk(reposDirectory, "")
        return out
    }

    /// Relative symlink target from a tag directory to `layers/<file>`, as `os.path.relpath` makes it.
    func relativeLayerLink(fromTagDirectory tagDir: String, file: String) -> String {
        let from = tagDir.split(separator: "/")
        let to = layersDirectory.split(separator: "/")
        var common = 0
        while common < from.count && common < to.count && from[common] == to[common] { common += 1 }
        let ups = Array(repeating: "..", count: from.count - common)
        return (ups + to[common...].map(String.init) + [file]).joined(separator: "/")
    }

    /// Publishes a pulled (v2) image: `TAG`, `v2`, `manifest` and one relative symlink per layer and
    /// for the config. The tag directory is assembled beside its final place and renamed in, so a
    /// reader sees the old tag or the new one. The blobs must already be in `layers/`.
    public func storeV2Image(_ image: LocalImageName, manifest: [UInt8], blobs: [Digest]) throws {
        try withLock {
            let published = try publishV2TagLocked(image, manifest: manifest, blobs: blobs)
            if let old = published.old { try? FileTree.remove(old) }
        }
    }

    /// `storeV2Image` for a caller that already holds the repository lock. Returns the tag
    /// directory and, when it replaced one, where the old one was moved.
    func publishV2TagLocked(_ image: LocalImageName, manifest: [UInt8], blobs: [Digest]) throws -> (final: String, old: String?) {
        let final = tagDirectory(image)
        let parent = PathName.parent(final)
        for d in blobs where !FileInfo.isRegularFile("\(layersDirectory)/\(d.fileName)") {
            throw StoreError("blob \(d) is missing from \(layersDirectory)")
        }
        try FileInfo.makeDirectories(parent)
        let suffix = StagingDirectory.uniqueSuffix()
        let staging = "\(parent)/.\(image.tag).new-\(suffix)"
        try syscall("mkdir", path: staging) { mkdir(staging, 0o755) }
        do {
            try AtomicFile.write("", to: "\(staging)/v2")
            try AtomicFile.write(manifest, to: "\(staging)/manifest")
            for d in Set(blobs) {
                let target = relativeLayerLink(fromTagDirectory: final, file: d.fileName)
                try syscall("symlink", path: "\(staging)/\(d.fileName)") { symlink(target, "\(staging)/\(d.fileName)") }
            }
            try AtomicFile.write("\(reposDirectory)/\(image.name):\(image.tag)", to: "\(staging)/TAG")
            var old: String?
            if FileInfo.exists(final) {
                // A re-pull keeps the tag's protection.
                if FileInfo.exists("\(final)/PROTECT") { try AtomicFile.write("", to: "\(staging)/PROTECT") }
                // One atomic step (RENAME_EXCHANGE): no moment, not even after a crash, without
                // the tag. The two renames below only where the filesystem cannot exchange.
                if cl_renameat2(AT_FDCWD, staging, AT_FDCWD, final, 2) == 0 { return (final, staging) }
                let aside = "\(parent)/.\(image.tag).old-\(suffix)"
                try syscall("rename", path: final) { rename(final, aside) }
                old = aside
            }
            do { try syscall("rename", path: final) { rename(staging, final) } } catch {
                if let old { rename(old, final) }
                throw error
            }
            return (final, old)
        } catch {
            try? FileTree.remove(staging)
            throw error
        }
    }

    /// The config and layer files of a tag, for v2 (schema2/OCI and schema1) and v1 layouts.
    public func imageContents(_ image: LocalImageName) throws -> ImageContents {
        let dir = tagDirectory(image)
        guard FileInfo.isRegularFile("\(dir)/TAG") else { throw StoreError("image not found: \(image)") }
        func need(_ path: String) throws -> String {
            guard FileInfo.isRegularFile(path) else {
                throw StoreError("image \(image) is incomplete: missing \(PathName.lastComponent(path))")
            }
            return path
        }
        if FileInfo.exists("\(dir)/v2") || FileInfo.exists("\(dir)/manifest") {
            guard let data = AtomicFile.read("\(dir)/manifest") else { throw StoreError("image \(image) has no manifest") }
            if let m = try? JSONDecoder().decode(Manifest.self, from: Data(data)) {
                let layers = try m.layers.map { try need("\(dir)/\($0.digest.fileName)") }
                guard let config = AtomicFile.read(try need("\(dir)/\(m.config.digest.fileName)")) else {
                    throw StoreError("cannot read the config of \(image)")
                }
                return ImageContents(configBytes: config, layerFiles: layers, isV2: true)
            }
            // Docker schema 1, as pulled by old udocker versions.
            struct Schema1: Decodable { var fsLayers: [[String: String]]; var history: [[String: String]]? }
            if let s1 = try? JSONDecoder().decode(Schema1.self, from: Data(data)) {
                let layers = try s1.fsLayers.reversed().compactMap { $0["blobSum"] }.map { try need("\(dir)/\($0)") }
                let config = s1.history?.first?["v1Compatibility"].map { Array($0.utf8) } ?? Array("{}".utf8)
                return ImageContents(configBytes: config, layerFiles: layers, isV2: true)
            }
            throw StoreError("image \(image) has an unreadable manifest")
        }
        // v1: ancestry is top first.
        guard let anc = AtomicFile.read("\(dir)/ancestry"),
            let ids = try? JSONDecoder().decode([String].self, from: Data(anc)), !ids.isEmpty
        else { throw StoreError("image \(image) has no ancestry") }
        let layers = try ids.reversed().map { try need("\(dir)/\($0).layer") }
        let config = AtomicFile.read("\(dir)/container.json") ?? AtomicFile.read("\(dir)/\(ids[0]).json") ?? Array("{}".utf8)
        return ImageContents(configBytes: config, layerFiles: layers, isV2: false)
    }

    /// The layer (and config) files a tag links to: (link path, size of the target).
    public func imageLayerLinks(_ image: LocalImageName) -> [(String, Int64)] {
        let dir = tagDirectory(image)
        return FileInfo.list(dir).sorted().compactMap { f in
            let p = "\(dir)/\(f)"
            return FileInfo.isSymlink(p) ? (p, FileInfo.size(p) ?? 0) : nil
        }
    }

    public func isImageProtected(_ image: LocalImageName) -> Bool { FileInfo.exists("\(tagDirectory(image))/PROTECT") }

    public func setImageProtected(_ image: LocalImageName, _ on: Bool) throws {
        guard imageExists(image) else { throw StoreError("image not found: \(image)") }
        let p = "\(tagDirectory(image))/PROTECT"
        if on { try AtomicFile.write("", to: p) } else if FileInfo.exists(p) { try syscall("unlink", path: p) { unlink(p) } }
    }

    /// Removes a tag, then every layer file no other tag still links to, then empty repo dirs.
    public func removeImage(_ image: LocalImageName, force: Bool = false) throws {
        try withLock {
            let dir = tagDirectory(image)
            guard FileInfo.isRegularFile("\(dir)/TAG") else { throw StoreError("image not found: \(image)") }
            guard !FileInfo.exists("\(dir)/PROTECT") else { throw StoreError("image is protected: \(image)") }
            let mine = Set(
                FileInfo.list(dir).filter { FileInfo.isSymlink("\(dir)/\($0)") }.compactMap { f -> String? in
                    FileInfo.readLink("\(dir)/\(f)").map { PathName.lastComponent($0) }
                })
            try FileTree.remove(dir)
            let stillUsed = referencedLayerFiles()
            for f in mine where !stillUsed.contains(f) {
                let p = "\(layersDirectory)/\(f)"
                if unlink(p) != 0 && errno != ENOENT && !force { throw SystemError("unlink", path: p) }
            }
            var parent = PathName.parent(dir)
            while parent.count > reposDirectory.count && parent.hasPrefix(reposDirectory + "/") {
                if rmdir(parent) != 0 { break }
                parent = PathName.parent(parent)
            }
        }
    }

    /// Basenames of every layer file some tag links to.
    public func referencedLayerFiles() -> Set<String> {
        var used = Set<String>()
        for listing in listImages() {
            for f in FileInfo.list(listing.directory) where FileInfo.isSymlink("\(listing.directory)/\(f)") {
                if let t = FileInfo.readLink("\(listing.directory)/\(f)") { used.insert(PathName.lastComponent(t)) }
            }
        }
        return used
    }

    /// `tag SRC DST`: a new tag directory linking to the same layer files.
    public func tagImage(_ source: LocalImageName, as target: LocalImageName) throws {
        try withLock {
            let src = tagDirectory(source)
            guard FileInfo.isRegularFile("\(src)/TAG") else { throw StoreError("image not found: \(source)") }
            guard !FileInfo.exists("\(src)/PROTECT") else { throw StoreError("image is protected: \(source)") }
            let dst = tagDirectory(target)
            guard !FileInfo.exists(dst) else { throw StoreError("target image already exists: \(target)") }
            try FileInfo.makeDirectories(dst)
            do {
                for f in FileInfo.list(src) where f != "TAG" && f != "PROTECT" {
                    let p = "\(src)/\(f)"
                    if FileInfo.isSymlink(p) {
                        let file = PathName.lastComponent(FileInfo.readLink(p)!)
                        let link = relativeLayerLink(fromTagDirectory: dst, file: file)
                        try syscall("symlink", path: "\(dst)/\(f)") { symlink(link, "\(dst)/\(f)") }
                    } else if let bytes = AtomicFile.read(p) {
                        try AtomicFile.write(bytes, to: "\(dst)/\(f)")
                    }
                }
                try AtomicFile.write("\(reposDirectory)/\(target.name):\(target.tag)", to: "\(dst)/TAG")
            } catch {
                try? FileTree.remove(dst)
                throw error
            }
        }
    }

    /// `verify`: every manifest blob present, and every `algo:hex` file hashes to its name.
    /// Returns the problems found (empty = OK).
    public func verifyImage(_ image: LocalImageName) -> [String] {
        let dir = tagDirectory(image)
        guard FileInfo.isRegularFile("\(dir)/TAG") else { return ["image not found: \(image)"] }
        var problems: [String] = []
        do { _ = try imageContents(image) } catch { problems.append("\(error)") }
        for (link, _) in imageLayerLinks(image) {
            let name = PathName.lastComponent(link)
            guard FileInfo.isRegularFile(link) else { problems.append("layer file missing: \(name)"); continue }
            if let d = try? Digest(parsing: name) {
                guard let actual = try? Self.sha256(ofFile: link) else { problems.append("cannot read layer: \(name)"); continue }
                if actual != d { problems.append("layer checksum mismatch: \(name) is \(actual)") }
            }
        }
        return problems
    }

    public static func sha256(ofFile path: String) throws -> Digest {
        let fd = try syscall("open", path: path) { open(path, O_RDONLY | O_CLOEXEC) }
        defer { close(fd) }
        return try sha256(of: fd, path: path)
    }

    /// The SHA-256 of what `fd` reads from its current offset to the end (`path` for errors).
    static func sha256(of fd: Int32, path: String) throws -> Digest {
        var hasher = DigestHasher()
        let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
        defer { buf.deallocate() }
        while true {
            let n = read(fd, buf.baseAddress, buf.count)
            if n < 0 { if errno == EINTR { continue }; throw SystemError("read", path: path) }
            if n == 0 { break }
            hasher.update(UnsafeRawBufferPointer(rebasing: buf[0..<n]))
        }
        return hasher.finalize()
    }
}
