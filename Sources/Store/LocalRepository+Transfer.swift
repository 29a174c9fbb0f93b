import Archive
import FoundationEssentials
import OCI
import UDockerSystem
#if canImport(Glibc)
import Glibc
#endif

/// A dot-directory where an import, load or clone is assembled. It holds an exclusive lock on
/// `<dir>/.lock` while in use, so `rmi --prune` can tell a live staging directory from the
/// leftover of a killed process.
final class StagingDirectory {
    let path: String
    private var lock: FileLock?

    /// The directory is made and locked under a name no cleaner looks at (`.new-<prefix>`), then
    /// renamed: whoever sees `.<prefix>` sees it locked while its owner lives.
    /// A process killed between `mkdir` and the lock leaves an unlocked `.new-<prefix>`: cleaners
    /// remove it like an abandoned staging directory. If one does so in that instant, the next
    /// step fails with ENOENT and the whole step is tried once more.
    init(in parent: String, prefix: String, mode: mode_t = 0o700) throws {
        path = "\(parent)/.\(prefix)"
        let fresh = "\(parent)/.new-\(prefix)"
        for attempt in 1...2 {
            try syscall("mkdir", path: fresh) { mkdir(fresh, mode) }
            do {
                lock = try FileLock(path: "\(fresh)/.lock", kind: .exclusive)
                try syscall("rename", path: path) { rename(fresh, path) }
                return
            } catch {
                lock?.unlock(); lock = nil
                try? FileTree.remove(fresh)
                if attempt == 1, (error as? SystemError)?.errno == ENOENT { continue }
                throw error
            }
        }
    }

    /// Staging names in `containers/` and `layers/` (and their `.new-` forms, before the lock).
    static let containerPrefixes = [".creating-", ".deleting-", ".new-creating-", ".new-deleting-"]
    static let layerPrefixes = [".importing-", ".loading-", ".new-importing-", ".new-loading-"]

    /// Deletes the directory (if it was not renamed away) and releases the lock.
    func discard() {
        if FileInfo.exists(path) { try? FileTree.remove(path) }
        release()
    }

    func release() { lock?.unlock(); lock = nil }

    deinit { release() }

    static func uniqueSuffix() -> String {
        "\(getpid())-" + Format.hex((0..<4).map { _ in UInt8.random(in: 0...255) })
    }
}

/// A udocker v1 layer id (64 hex digits, random as udocker's `Unique().layer_v1()`).
func randomLayerID() -> String {
    Format.hex((0..<32).map { _ in UInt8.random(in: 0...255) })
}

extension LocalRepository {
    // MARK: - export

    /// `export`: the container's ROOT (or, with `clone`, the whole container directory with its
    /// metadata) as a tar stream on `fd`, entries named `./…` as `tar -C dir -c .` makes them.
    /// Returns the writer's warnings.
    ///
    /// An overlay container's files are its merged view (`mergedRoot`, mounted by the caller): it
    /// is archived as the ROOT, and a clone archive holds it as a flat container (no `lowers`,
    /// `upper` or `work`), which any udocker can import.
    public func exportContainer(_ id: String, to fd: Int32, clone: Bool, mergedRoot: String? = nil) throws -> [String] {
        let dir = containerDirectory(id)
        let root = clone ? dir : (mergedRoot ?? "\(dir)/ROOT")
        guard FileInfo.isDirectory(root) else { throw StoreError("container has no ROOT directory: \(id)") }
        let overlayFiles: Set<String> = mergedRoot == nil ? [] : ["ROOT", "upper", "work", "lowers"]
        let writer = TarWriter(fileDescriptor: fd)
        try writer.addTree(at: root, exclude: { clone && ($0 == ".lock" || overlayFiles.contains($0)) })
        if clone, let mergedRoot { try writer.addTree(at: mergedRoot, prefix: "./ROOT") }
        try writer.finish()
        return writer.warnings
    }

    // MARK: - import to an image (udocker v1 layout)

    /// Where a tarball comes from: a file (which `--mv` may consume) or an open descriptor (stdin).
    public enum TarSource: Sendable {
        case file(String)
        case descriptor(Int32)

        var shown: String {
            switch self {
            case .file(let p): return p;
            case .descriptor: return "stdin"
            }
        }
    }

    /// `import FILE IMAGE:TAG`: a root-filesystem tarball becomes a one-layer image in udocker's v1
    /// layout (`v1`, `ancestry`, `<id>.layer`, `<id>.json`), as the Python tool writes it. The tar
    /// is checked end to end first (compression, every header, no name climbing out of the root);
    /// nothing is published unless it is sound. With `move`, the source file is removed once the
    /// image exists. Returns the layer id.
    @discardableResult
    public func importImage(
        from source: TarSource, as image: LocalImageName, move: Bool = false,
        platform: Platform? = nil
    ) throws -> String {
        guard !imageExists(image) else { throw StoreError("image already exists: \(image)") }
        let layerID = randomLayerID()
        let staging = try StagingDirectory(in: layersDirectory, prefix: "importing-\(StagingDirectory.uniqueSuffix())")
        defer { staging.discard() }
        let staged = "\(staging.path)/layer"
        try stageTarball(source, at: staged, move: move)
        let summary: LayerSummary
        do { summary = try LayerInspector.inspect(path: staged, rejectEscapingNames: true, requireEndOfArchive: true) } catch {
            throw StoreError("\(source.shown): not a valid tar archive: \(error)", kind: .corrupt, cause: error)
        }
        guard summary.entries > 0 else { throw StoreError("\(source.shown): the tar archive is empty") }
        let meta = Self.importMetadata(layerID: layerID, platform: platform, size: FileInfo.size(staged) ?? 0, diffID: summary.diffID)
        try AtomicFile.write(meta, to: "\(staging.path)/json")

        try withLock {
            guard !imageExists(image) else { throw StoreError("image already exists: \(image)") }
            let final = tagDirectory(image)
            let parent = PathName.parent(final)
            let layerFile = "\(layersDirectory)/\(layerID).layer"
            let jsonFile = "\(layersDirectory)/\(layerID).json"
            var published: [String] = []
            var createdParents: [String] = []
            do {
                var p = parent
                while !FileInfo.exists(p) && p.hasPrefix(reposDirectory + "/") {
                    createdParents.append(p); p = PathName.parent(p)
                }
                try FileInfo.makeDirectories(parent)
                let tagStaging = "\(parent)/.\(image.tag).new-\(getpid())"
                if FileInfo.exists(tagStaging) { try FileTree.remove(tagStaging) }
                try syscall("mkdir", path: tagStaging) { mkdir(tagStaging, 0o755) }
                published.append(tagStaging)
                try syscall("rename", path: layerFile) { rename(staged, layerFile) }
                published.append(layerFile)
                try syscall("rename", path: jsonFile) { rename("\(staging.path)/json", jsonFile) }
                published.append(jsonFile)
                try AtomicFile.write("", to: "\(tagStaging)/v1")
                try AtomicFile.write(Array("[\"\(layerID)\"]".utf8), to: "\(tagStaging)/ancestry")
                for f in ["\(layerID).layer", "\(layerID).json"] {
                    let target = relativeLayerLink(fromTagDirectory: final, file: f)
                    try syscall("symlink", path: "\(tagStaging)/\(f)") { symlink(target, "\(tagStaging)/\(f)") }
                }
                try AtomicFile.write("\(reposDirectory)/\(image.name):\(image.tag)", to: "\(tagStaging)/TAG")
                try syscall("rename", path: final) { rename(tagStaging, final) }
            } catch {
                for p in published.reversed() { try? FileTree.remove(p) }
                for d in createdParents { rmdir(d) }
                throw error
            }
        }
        if move, case .file(let path) = source { unlink(path) }
        return layerID
    }

    /// Copies a tarball into the staging directory: a reflink where the filesystem can, else a
    /// byte copy. Never a hard link: the image must not change when the user edits the tarball
    /// later. `--mv` hands the file over instead: hard-linked when on the same filesystem, and the
    /// caller removes the source once the image exists (a failed import leaves it in place).
    /// A symlink given to `--mv` is copied like any tarball (`link(2)` would store the symlink
    /// itself as the layer, pointing out of the repository); the caller then removes the symlink.
    func stageTarball(_ source: TarSource, at staged: String, move: Bool = false) throws {
        switch source {
        case .file(let path):
            guard FileInfo.isRegularFile(path) else { throw StoreError("tar file does not exist: \(path)") }
            if move, link(path, staged) == 0 {
                // What was linked is the name as it is now: keep it only when it is the file itself.
                var st = stat()
                if lstat(staged, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG { return }
                unlink(staged)
            }
            let src = try syscall("open", path: path) { open(path, O_RDONLY | O_CLOEXEC) }
            defer { close(src) }
            let dst = try syscall("open", path: staged) { open(staged, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644) }
            let cloned = FileClone.reflink(from: src, to: dst)
            close(dst)
            if cloned { return }
            unlink(staged)
            try copyStream(from: src, to: staged, shown: path)
        case .descriptor(let fd):
            try copyStream(from: fd, to: staged, shown: "stdin")
        }
    }

    func copyStream(from src: Int32, to path: String, shown: String) throws {
        let dst = try syscall("open", path: path) { open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644) }
        defer { close(dst) }
        let buf = UnsafeMutableRawPointer.allocate(byteCount: 1 << 20, alignment: 16)
        defer { buf.deallocate() }
        while true {
            let n = read(src, buf, 1 << 20)
            if n < 0 { if errno == EINTR { continue }; throw SystemError("read", path: shown) }
            if n == 0 { break }
            var off = 0
            while off < n {
                let w = write(dst, buf + off, n - off)
                if w < 0 { if errno == EINTR { continue }; throw SystemError("write", path: path) }
                off += w
            }
        }
        if fsync(dst) != 0 && errno != EINVAL { throw SystemError("fsync", path: path) }
    }

    /// udocker's `create_container_meta`: minimal image metadata for an imported tarball.
    /// `2024-05-01T12:00:00.000000000Z` (UTC), udocker's `created` stamp.
    static func createdStamp(_ seconds: time_t) -> String {
        var t = seconds, parts = tm()
        gmtime_r(&t, &parts)
        func two(_ v: Int32) -> String { Format.padded(String(v), width: 2, with: "0") }
        return Format.padded(String(parts.tm_year + 1900), width: 4, with: "0") + "-" + two(parts.tm_mon + 1) + "-"
            + two(parts.tm_mday) + "T" + two(parts.tm_hour) + ":" + two(parts.tm_min) + ":" + two(parts.tm_sec)
            + ".000000000Z"
    }

    static func importMetadata(layerID: String, platform: Platform?, size: Int64, diffID: Digest) -> [UInt8] {
        let host = Platform.host
        let p = platform ?? host
        let empty: [String: Any] = [
            "Hostname": "", "Domainname": "", "User": "", "Memory": 0, "MemorySwap": 0, "CpusShares": 0,
            "Cpuset": "", "AttachStdin": false, "AttachStdout": false, "AttachStderr": false,
            "PortSpecs": JSONNull.null, "ExposedPorts": JSONNull.null, "Tty": false, "OpenStdin": false,
            "StdinOnce": false, "Env": JSONNull.null, "Cmd": JSONNull.null, "Image": "", "Volumes": JSONNull.null,
            "WorkingDir": "", "Entrypoint": JSONNull.null, "NetworkDisable": false, "MacAddress": "",
            "OnBuild": JSONNull.null, "Labels": JSONNull.null,
        ]
        var meta: [String: Any] = [
            "id": layerID, "comment": "created by udocker", "created": Self.createdStamp(time(nil)),
            "architecture": p.architecture, "os": p.os, "size": size,
            "rootfs": ["type": "layers", "diff_ids": [diffID.description]],
            "container_config": empty, "config": empty,
        ]
        if let v = p.variant { meta["variant"] = v }
        return (try? JSONAny.serialize(meta)) ?? Array("{}".utf8)
    }

    // MARK: - containers from tarballs

    /// `import --tocontainer`: extracts a root-filesystem tarball straight into a new container
    /// (`imagerepo.name` = `IMPORTED:unknown` unless `image` is given). Assembled under a
    /// dot-directory and renamed into place only when the whole tar extracted.
    public func importContainer(
        from source: TarSource, image: String? = nil, name: String? = nil,
        platform: Platform? = nil, warn: (OutputWarning) -> Void = { _ in }
    ) throws -> String {
        try checkNewName(name)
        let id = Self.newContainerID()
        let staging = try StagingDirectory(in: containersDirectory, prefix: "creating-\(id)", mode: 0o755)
        defer { staging.discard() }
        try syscall("mkdir", path: "\(staging.path)/ROOT") { mkdir("\(staging.path)/ROOT", 0o755) }
        let tarFile = try checkedTarball(source, staging: staging)
        let extractor = try LayerExtractor(root: "\(staging.path)/ROOT")
        let diffID: Digest
        do { diffID = try extractor.extract(layerAt: tarFile) } catch {
            throw StoreError("\(source.shown): not a valid tar archive: \(error)", kind: .corrupt, cause: error)
        }
        unlink("\(staging.path)/.tarball")
        reportExtractionWarnings(extractor.warnings, warn)
        let layerID = randomLayerID()
        try ContainerMetadata.writeOrigin(
            image: image ?? "IMPORTED:unknown",
            config: Self.importMetadata(layerID: layerID, platform: platform, size: 0, diffID: diffID),
            directory: staging.path)
        return try publishContainer(staging, id: id, name: name)
    }

    /// `import --clone`: a tarball made by `export --clone` (ours or the Python tool's) becomes a new
    /// container with a new id. The archive is extracted aside and only what a clone needs is
    /// taken from it (`CloneMetadata`): ROOT, container.json, imagerepo.name, a valid execmode.
    public func importClone(from source: TarSource, name: String? = nil, warn: (OutputWarning) -> Void = { _ in }) throws -> String {
        try checkNewName(name)
        let id = Self.newContainerID()
        let staging = try StagingDirectory(in: containersDirectory, prefix: "creating-\(id)", mode: 0o755)
        defer { staging.discard() }
        let tarFile = try checkedTarball(source, staging: staging)
        let extracted = "\(staging.path)/.extracted"
        try syscall("mkdir", path: extracted) { mkdir(extracted, 0o700) }
        let extractor = try LayerExtractor(root: extracted)
        do { try extractor.extract(layerAt: tarFile) } catch {
            throw StoreError("\(source.shown): not a valid tar archive: \(error)", kind: .corrupt, cause: error)
        }
        unlink("\(staging.path)/.tarball")
        reportExtractionWarnings(extractor.warnings, warn)
        try adoptClone(extracted, into: staging, shown: source.shown, warn: warn)
        return try publishContainer(staging, id: id, name: name)
    }

    /// Takes ROOT and the allowed metadata from an extracted copy and removes the rest.
    private func adoptClone(_ extracted: String, into staging: StagingDirectory, shown: String, warn: (OutputWarning) -> Void) throws {
        for w in try CloneMetadata.adopt(from: extracted, into: staging.path, shown: shown) { warn(.text(w)) }
        try FileTree.remove(extracted)
    }

    /// `clone`: a full copy of a container (ROOT, metadata, execution mode) under a new id. The copy
    /// streams through the same tar writer and safe extractor as export/import, so hard links,
    /// symlinks, modes and times are kept and nothing can be written outside the new directory.
    /// An overlay container (`mergedRoot`: its merged view) is cloned into a flat container.
    public func cloneContainer(
        _ sourceID: String, name: String? = nil, mergedRoot: String? = nil,
        warn: (OutputWarning) -> Void = { _ in }
    ) throws -> String {
        try checkNewName(name)
        let src = containerDirectory(sourceID)
        guard FileInfo.isDirectory("\(src)/ROOT") else { throw StoreError("container has no ROOT directory: \(sourceID)") }
        let id = Self.newContainerID()
        let staging = try StagingDirectory(in: containersDirectory, prefix: "creating-\(id)", mode: 0o755)
        defer { staging.discard() }
        let extracted = "\(staging.path)/.extracted"
        try syscall("mkdir", path: extracted) { mkdir(extracted, 0o700) }
        let extractor = try LayerExtractor(root: extracted)
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw SystemError("pipe") }
        let (readFD, writeFD) = (fds[0], fds[1])
        _ = fcntl(readFD, F_SETFD, FD_CLOEXEC); _ = fcntl(writeFD, F_SETFD, FD_CLOEXEC)
        // The writer thread blocks SIGPIPE: if the extractor stops early, its writes fail with
        // EPIPE instead of the signal ending the process.
        let outcome = CloneOutcome()
        let writer = WorkerThread.start(blockingSIGPIPE: true) {
            do { outcome.warnings = try self.exportContainer(sourceID, to: writeFD, clone: true, mergedRoot: mergedRoot) } catch {
                outcome.error = error
            }
            close(writeFD)
        }
        guard let writer else {
            close(readFD); close(writeFD)
            throw StoreError("cannot copy container \(sourceID): cannot start a thread")
        }
        var extractError: Error?
        do { try extractor.extract(fileDescriptor: readFD, layerName: "clone") } catch { extractError = error }
        close(readFD)
        writer.join()
        if let e = outcome.error { throw StoreError("cannot copy container \(sourceID): \(e)", cause: e) }
        if let e = extractError { throw StoreError("cannot copy container \(sourceID): \(e)", cause: e) }
        for w in outcome.warnings { warn(.text(w)) }
        reportExtractionWarnings(extractor.warnings, warn)
        try adoptClone(extracted, into: staging, shown: sourceID, warn: warn)
        return try publishContainer(staging, id: id, name: name)
    }

    /// The tarball as a file, read through once: compression, every header, and no entry name
    /// that climbs out of the root (such an archive is refused, not clamped). Stdin is staged
    /// into the staging directory first (as `.tarball`).
    private func checkedTarball(_ source: TarSource, staging: StagingDirectory) throws -> String {
        var path: String
        switch source {
        case .file(let p):
            guard FileInfo.isRegularFile(p) else { throw StoreError("tar file does not exist: \(p)") }
            path = p
        case .descriptor:
            path = "\(staging.path)/.tarball"
            try stageTarball(source, at: path)
        }
        do {
            let s = try LayerInspector.inspect(path: path, rejectEscapingNames: true, requireEndOfArchive: true)
            guard s.entries > 0 else { throw StoreError("\(source.shown): the tar archive is empty") }
        } catch let e as StoreError { throw e } catch {
            throw StoreError("\(source.shown): not a valid tar archive: \(error)", kind: .corrupt, cause: error)
        }
        return path
    }

    private func checkNewName(_ name: String?) throws {
        guard let name else { return }
        try Self.validateName(name)
        if FileInfo.exists("\(containersDirectory)/\(name)") { throw StoreError("container name already exists: \(name)") }
    }

    private func reportExtractionWarnings(_ warnings: [OutputWarning], _ warn: (OutputWarning) -> Void) {
        let devices = warnings.filter(\.isDeviceNode)
        if !devices.isEmpty { warn(.deviceNodesSkipped(count: devices.count)) }
        for w in warnings where !w.isDeviceNode { warn(w) }
    }

    /// Renames an assembled container into place and sets its name. A kept `root.path` still names
    /// the old ROOT: a Fakechroot mode re-targets the clone from it on its next run (as udocker does).
    private func publishContainer(_ staging: StagingDirectory, id: String, name: String?) throws -> String {
        let final = containerDirectory(id)
        try withLock {
            if let name, FileInfo.exists("\(containersDirectory)/\(name)") { throw StoreError("container name already exists: \(name)") }
            try syscall("rename", path: final) { rename(staging.path, final) }
            if let name {
                do { try syscall("symlink", path: name) { symlink(id, "\(containersDirectory)/\(name)") } } catch {
                    rename(final, staging.path)
                    throw error
                }
            }
        }
        staging.release()
        return id
    }
}

/// Result of the writer thread of `clone` (read after the thread is joined).
private final class CloneOutcome: @unchecked Sendable {
    var error: Error?
    var warnings: [String] = []
}
