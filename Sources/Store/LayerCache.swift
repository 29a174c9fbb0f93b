import Archive
import FoundationEssentials
import OCI
import Synchronization
import UDockerSystem
#if canImport(Glibc)
import Glibc
#endif

/// Content-addressed cache of extracted layers, shared by overlay containers:
///
///     layers/cache/<diffid-hex>/        one layer's own files (not flattened), usable as an
///                                       overlayfs lowerdir mounted with `userxattr`
///     layers/cache/.<diffid-hex>.lock   per-layer lock (exclusive while it is populated)
///     layers/cache/.staging-<hex>-<n>/  extraction in progress (renamed into place when verified)
///
/// A layer's whiteouts are stored in overlayfs "xattr whiteout" form, which needs no privilege: a
/// zero-size file carrying `user.overlay.whiteout`, its directory (and the layer root) marked with
/// `user.overlay.opaque=x`; an opaque directory (`.wh..wh..opq`) carries `user.overlay.opaque=y`.
/// An entry is renamed into place only when its DiffID equals the one the image config lists, so
/// a directory named by a DiffID always holds exactly that content.
public struct LayerCache: Sendable {
    public let directory: String

    public init(directory: String) { self.directory = directory }

    /// Number of layers extracted into a cache since the process started (for tests and `-D`).
    public static var extractions: Int { counter.withLock { $0 } }
    private static let counter = Mutex(0)

    public func path(_ diffID: Digest) -> String { "\(directory)/\(diffID.hex)" }

    public func contains(_ diffID: Digest) -> Bool { FileInfo.isDirectory(path(diffID)) && !FileInfo.isSymlink(path(diffID)) }

    /// The cache directory of `diffID`, extracting `layerFile` first when it is not cached yet.
    /// Concurrent callers for the same layer wait for each other; the layer is extracted once.
    /// Returns the path and whether this call extracted it.
    @discardableResult
    public func ensure(
        _ diffID: Digest, layerFile: String, warn: (OutputWarning) -> Void = { _ in }
    ) throws -> (path: String, extracted: Bool) {
        let final = path(diffID)
        if contains(diffID) { return (final, false) }
        try FileInfo.makeDirectories(directory, mode: 0o755)
        let lock = try FileLock(path: "\(directory)/.\(diffID.hex).lock", kind: .exclusive)
        defer { lock.unlock() }
        if contains(diffID) { return (final, false) }
        let staging = "\(directory)/.staging-\(diffID.hex)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try syscall("mkdir", path: staging) { mkdir(staging, 0o755) }
        do {
            // One pass: the layer's whiteouts are recorded (not applied: the staging directory
            // is empty) and marked in overlayfs form below.
            var options = ExtractOptions()
            options.recordWhiteouts = true
            let extractor = try LayerExtractor(root: staging, options: options)
            let layersDirectory = PathName.parent(directory)
            let got: Digest
            do { got = try extractor.extract(layerAt: layerFile) } catch {
                guard let note = BlobEviction.evictIfCorrupt(layerFile, layersDirectory: layersDirectory) else { throw error }
                throw StoreError("layer \(PathName.lastComponent(layerFile)): \(error); \(note)", cause: error)
            }
            guard got == diffID else {
                throw StoreError(
                    BlobEviction.explain(
                        "layer \(PathName.lastComponent(layerFile)): DiffID mismatch: expected \(diffID), got \(got); the image is corrupt, pull it again",
                        layerFile: layerFile, layersDirectory: layersDirectory))
            }
            let devices = extractor.warnings.filter(\.isDeviceNode)
            if !devices.isEmpty { warn(.deviceNodesSkipped(count: devices.count)) }
            for w in extractor.warnings where !w.isDeviceNode { warn(w) }
            try Self.markWhiteouts(extractor.recordedWhiteouts, in: staging)
            Self.counter.withLock { $0 += 1 }
            try syscall("rename", path: final) { rename(staging, final) }
        } catch {
            try? FileTree.remove(staging)
            throw error
        }
        return (final, true)
    }

    /// Makes sure every layer is cached, extracting the missing ones concurrently (independent
    /// layers need no order: each goes into its own directory), at most `parallelism` at a time.
    /// Warnings are reported in layer order; the first error (in layer order) is thrown once all
    /// running extractions have ended.
    public func ensure(
        _ layers: [(diffID: Digest, file: String)], parallelism: Int = LayerCache.defaultParallelism,
        warn: (OutputWarning) -> Void = { _ in }
    ) throws {
        let missing = layers.filter { !contains($0.diffID) }
        guard missing.count > 1, parallelism > 1 else {
            for layer in missing { try ensure(layer.diffID, layerFile: layer.file, warn: warn) }
            return
        }
        let outcomes = Mutex([Int: (warnings: [OutputWarning], error: (any Error)?)]())
        Threads.forEach(missing.count, width: parallelism) { i in
            var warnings: [OutputWarning] = []
            var failure: (any Error)?
            do { try ensure(missing[i].diffID, layerFile: missing[i].file, warn: { warnings.append($0) }) } catch {
                failure = error
            }
            outcomes.withLock { $0[i] = (warnings, failure) }
            return failure == nil  // start no more after a failure
        }
        let done = outcomes.withLock { $0 }
        for i in missing.indices { for w in done[i]?.warnings ?? [] { warn(w) } }
        for i in missing.indices { if let e = done[i]?.error { throw e } }
    }

    /// Layers extracted at the same time: each extraction already decompresses on a second thread.
    public static var defaultParallelism: Int { max(1, min(3, ProcessInfo.processInfo.activeProcessorCount)) }

    /// Records whiteouts in overlayfs xattr form beneath `root` (no symlink followed).
    static func markWhiteouts(_ entries: [LayerWhiteouts.Entry], in root: String) throws {
        guard !entries.isEmpty else { return }
        let rootFD = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard rootFD >= 0 else { throw SystemError("open", path: root) }
        defer { close(rootFD) }
        var marked = false
        // Plain whiteouts first, opaque markers last ("y" wins over "x" on the same directory).
        for e in entries.sorted(by: { ($0.name == nil ? 1 : 0) < ($1.name == nil ? 1 : 0) }) {
            let dfd = try openDirectory(e.parent, beneath: rootFD, root: root)
            defer { close(dfd) }
            guard let name = e.name else {
                if !e.parent.isEmpty { try setXattr(dfd, "user.overlay.opaque", "y", root: root) }
                continue
            }
            // The layer re-created the name itself: its own entry wins; nothing to hide.
            var st = stat()
            if withCName(name, { fstatat(dfd, $0, &st, AT_SYMLINK_NOFOLLOW) }) == 0 { continue }
            let fd = withCName(name) { openat(dfd, $0, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600) }
            guard fd >= 0 else { throw SystemError("create whiteout", path: root) }
            defer { close(fd) }
            try setXattr(fd, "user.overlay.whiteout", "y", root: root)
            if !e.parent.isEmpty, getXattr(dfd, "user.overlay.opaque") != "y" { try setXattr(dfd, "user.overlay.opaque", "x", root: root) }
            marked = true
        }
        if marked { try setXattr(rootFD, "user.overlay.opaque", "x", root: root) }
    }

    private static func openDirectory(_ comps: [[UInt8]], beneath rootFD: Int32, root: String) throws -> Int32 {
        var cur = dup(rootFD)
        for c in comps {
            var fd = withCName(c) { openat(cur, $0, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) }
            if fd < 0 && errno == ENOENT {
                _ = withCName(c) { mkdirat(cur, $0, 0o755) }
                fd = withCName(c) { openat(cur, $0, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) }
            }
            let e = errno
            close(cur)
            guard fd >= 0 else { throw SystemError("open whiteout directory", path: root, errno: e) }
            cur = fd
        }
        return cur
    }

    private static func setXattr(_ fd: Int32, _ name: String, _ value: String, root: String) throws {
        guard LayerWhiteouts.setXattr(fd, name, value) == 0 else {
            throw SystemError("set \(name) (the layer cache needs user extended attributes)", path: root)
        }
    }

    private static func getXattr(_ fd: Int32, _ name: String) -> String? { LayerWhiteouts.xattr(fd: fd, name) }

    /// An extended attribute of `path` (not following a final symlink), for tests and diagnostics.
    public static func xattr(_ path: String, _ name: String) -> String? { LayerWhiteouts.xattr(path: path, name) }

    /// DiffIDs (hex) used by overlay containers, from their `lowers` files.
    public static func referenced(containersDirectory: String) -> Set<String> {
        var used: Set<String> = []
        for id in FileInfo.list(containersDirectory) where !FileInfo.isSymlink("\(containersDirectory)/\(id)") {
            for line in (AtomicFile.readString("\(containersDirectory)/\(id)/lowers") ?? "").split(separator: "\n") {
                used.insert(String(line))
            }
        }
        return used
    }
}
