import CLinux
import OCI
import System
#if canImport(Glibc)
import Glibc
#endif

/// Options for `LayerExtractor`.
public struct ExtractOptions: Sendable {
    /// Skip character and block devices with a warning. Always the case without privileges; when
    /// false, creating them is attempted and EPERM turns into the same warning.
    public var skipDevices = true
    /// Receives each warning as it happens (they are also collected in `LayerExtractor.warnings`).
    public var warningHandler: (@Sendable (String) -> Void)?
    /// Size of the decompressed-data buffer.
    public var bufferSize = 1 << 20
    /// Size of the compressed-input buffer.
    public var inputBufferSize = 256 * 1024
    /// Decompress and hash compressed layers read from regular files on a second thread, handing
    /// `pipelineChunkSize` chunks to the extracting thread through a queue of `pipelineDepth`.
    public var pipelined = true
    public var pipelineChunkSize = 1 << 20
    public var pipelineDepth = 3
    public init() {}
}

/// Streams OCI/Docker layers into a container root in one pass: decompression (gzip, zstd or
/// none, from magic bytes), tar parsing, whiteouts and the DiffID hash, with every path resolved
/// inside the root by `RootResolver` (no string joins, no host-path syscalls).
///
/// Layers are applied base first, by calling `extract` once per layer on the same root.
public final class LayerExtractor {
    public let root: RootDirectory
    public let options: ExtractOptions
    public private(set) var warnings: [String] = []

    private let resolver: RootResolver
    private let umask: mode_t
    private var layerName = ""
    /// Directory metadata applied after the layer's entries (mode with u+rwx, mtime).
    private var directoryMeta: [[UInt8]: (mode: mode_t, sec: Int64, nsec: Int64)] = [:]
    private var directoryOrder: [[UInt8]] = []
    /// The producer side of the last pipelined extraction (nil when it ran on one thread).
    private(set) var lastPipelineReport: DecodePipeline.Report?
    /// The running pipeline (for tests).
    private(set) var currentPipeline: DecodePipeline?

    public init(root: String, options: ExtractOptions = .init()) throws {
        self.root = try RootDirectory(path: root)
        self.options = options
        resolver = try self.root.makeResolver()
        resolver.recordTouched = true
        umask = cl_current_umask()
    }

    public init(root: RootDirectory, options: ExtractOptions = .init()) throws {
        self.root = root
        self.options = options
        resolver = try root.makeResolver()
        resolver.recordTouched = true
        umask = cl_current_umask()
    }

    /// Streams one layer file (gzip, zstd or plain tar; detected by magic) into the root, applying
    /// whiteouts as it goes, and returns the DiffID: the sha256 of the whole uncompressed stream.
    @discardableResult
    public func extract(layerAt path: String) throws -> Digest {
        let name = path.split(separator: "/").last.map(String.init) ?? path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw ArchiveError(.io, "open \(path): \(String(cString: strerror(errno)))", layer: name)
        }
        defer { close(fd) }
        return try extract(fileDescriptor: fd, layerName: name)
    }

    /// Extracts and checks the DiffID against the image config's `rootfs.diff_ids` entry. On a
    /// mismatch the root holds unverified content: the caller must discard the container.
    @discardableResult
    public func extract(layerAt path: String, expectedDiffID: Digest) throws -> Digest {
        let d = try extract(layerAt: path)
        guard d == expectedDiffID else {
            let name = path.split(separator: "/").last.map(String.init) ?? path
            throw ArchiveError(.diffIDMismatch, "DiffID mismatch: expected \(expectedDiffID), got \(d)", layer: name)
        }
        return d
    }

    /// Same for an already-open byte source (a file, a pipe, stdin). The fd is not closed.
    @discardableResult
    public func extract(fileDescriptor fd: Int32, layerName: String = "stdin") throws -> Digest {
        self.layerName = layerName
        resolver.invalidate()
        resolver.trim()
        resolver.resetTouched()
        directoryMeta.removeAll()
        directoryOrder.removeAll()
        defer {
            resolver.invalidate()
            resolver.trim()
            resolver.resetTouched()
            directoryMeta.removeAll()
            directoryOrder.removeAll()
        }
        lastPipelineReport = nil
        var pipeline: DecodePipeline?
        defer {
            if let pipeline { lastPipelineReport = pipeline.finalReport() }
            currentPipeline = nil
        }
        do {
            let decoder = try Decompressor(fd: fd, inputCapacity: options.inputBufferSize)
            if options.pipelined && decoder.compression != .none && isRegularFile(fd) {
                pipeline = DecodePipeline.start(decoder: decoder, chunkSize: options.pipelineChunkSize,
                                                depth: options.pipelineDepth)
                currentPipeline = pipeline
            }
            let buffer = HashedBuffer(source: decoder, capacity: options.bufferSize, pipeline: pipeline)
            let tar = TarReader(buffer: buffer)
            while let header = try tar.next() {
                resolver.trim()
                try apply(header, tar)
            }
            try buffer.drain()   // trailing bytes count in the DiffID
            try applyDirectoryMetadata()
            return buffer.digest()
        } catch let e as ArchiveError {
            throw e.inLayer(layerName)
        } catch let e as SystemError {
            throw ArchiveError(.io, e.description, layer: layerName)
        } catch {
            throw ArchiveError(.io, "\(error)", layer: layerName)
        }
    }

    private func isRegularFile(_ fd: Int32) -> Bool {
        var st = stat()
        return fstat(fd, &st) == 0 && st.st_mode & 0o170000 == 0o100000
    }

    // MARK: - entries

    private static let whiteoutPrefix: [UInt8] = Array(".wh.".utf8)
    private static let opaqueName: [UInt8] = Array(".wh..wh..opq".utf8)

    /// Lexically cleaned components; `..` that would climb above the root is dropped (clamped).
    static func clean(_ path: [UInt8]) -> (components: [[UInt8]], clamped: Bool) {
        var out: [[UInt8]] = []
        var clamped = false
        for c in RootResolver.components(path) {
            if c == [0x2E, 0x2E] {
                if out.isEmpty { clamped = true } else { out.removeLast() }
            } else {
                out.append(c)
            }
        }
        return (out, clamped)
    }

    private func apply(_ h: TarHeader, _ tar: TarReader) throws {
        let shown = printable(h.path)
        let (comps, clamped) = LayerExtractor.clean(h.path)
        guard let name = comps.last else {
            if h.type == .directory { return }   // "./": the root's own metadata is not changed
            throw ArchiveError(.invalidEntry, "refusing to change the type of the root directory (entry '\(shown)')")
        }
        if clamped {
            warn("entry '\(shown)' climbs above the root; extracted inside it")
        }
        if name.starts(with: LayerExtractor.whiteoutPrefix) {
            try whiteout(Array(comps.dropLast()), name: name, shown: shown)
            return
        }
        switch h.type {
        case .characterDevice, .blockDevice:
            guard (0...Int64(UInt32.max)).contains(h.devMajor), (0...Int64(UInt32.max)).contains(h.devMinor) else {
                throw ArchiveError(.invalidEntry, "impossible device number in entry '\(shown)'")
            }
            if options.skipDevices {
                warn("skipped device node '\(shown)' (devices cannot be created without privileges)")
                return
            }
        case .other(let t):
            warn("skipped entry '\(shown)' of unsupported type '\(Character(UnicodeScalar(t)))'")
            return
        default:
            break
        }
        guard let (pfd, ppath) = try resolver.directory(Array(comps.dropLast()), create: true) else {
            throw ArchiveError(.io, "cannot create the parent directory of '\(shown)'")
        }
        let key = RootResolver.join(ppath, name)
        resolver.markTouched(key)
        switch h.type {
        case .regular:
            try writeFile(h, tar, in: pfd, name: name, shown: shown)
        case .directory:
            try makeDirectory(h, in: pfd, name: name, key: key, shown: shown)
        case .symlink:
            try makeSymlink(h, in: pfd, name: name, shown: shown)
        case .hardlink:
            try makeHardlink(h, in: pfd, name: name, key: key, shown: shown)
        case .fifo:
            try makeNode(h, in: pfd, name: name, shown: shown, device: false)
        case .characterDevice, .blockDevice:
            try makeNode(h, in: pfd, name: name, shown: shown, device: true)
        case .other:
            break
        }
    }

    private func writeFile(_ h: TarHeader, _ tar: TarReader, in pfd: Int32, name: [UInt8], shown: String) throws {
        let perm = mode_t(h.mode & 0o777) | 0o600
        let flags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC
        var fd = creating(pfd) { withCName(name) { openat(pfd, $0, flags, perm) } }
        if fd < 0 && errno == EEXIST {
            _ = try replaceExisting(in: pfd, name: name, newIsDirectory: false, shown: shown)
            fd = creating(pfd) { withCName(name) { openat(pfd, $0, flags, perm) } }
        }
        guard fd >= 0 else { throw io("create", shown) }
        var closed = false
        defer { if !closed { close(fd) } }
        try tar.readData { chunk in
            var p = chunk.baseAddress!
            var left = chunk.count
            while left > 0 {
                let n = write(fd, p, left)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw io("write", shown)
                }
                p += n
                left -= n
            }
        }
        if perm & ~umask != perm { fchmod(fd, perm) }
        _ = cl_set_mtime(fd, nil, h.mtime, h.mtimeNanoseconds, 0)
        closed = true
        if close(fd) != 0 && errno != EINTR { throw io("close", shown) }
    }

    private func makeDirectory(_ h: TarHeader, in pfd: Int32, name: [UInt8], key: [UInt8], shown: String) throws {
        // Created u+rwx so the rest of the layer can go in; the final mode is applied afterwards.
        var r = creating(pfd) { withCName(name) { mkdirat(pfd, $0, 0o700) } }
        if r != 0 && errno == EEXIST {
            if try !replaceExisting(in: pfd, name: name, newIsDirectory: true, shown: shown) {
                r = creating(pfd) { withCName(name) { mkdirat(pfd, $0, 0o700) } }
                if r != 0 { throw io("mkdir", shown) }
            }
        } else if r != 0 {
            throw io("mkdir", shown)
        }
        if 0o700 & ~umask != 0o700 { _ = withCName(name) { cl_fchmodat_nofollow(pfd, $0, 0o700) } }
        if directoryMeta[key] == nil { directoryOrder.append(key) }
        directoryMeta[key] = (mode_t(h.mode & 0o777) | 0o700, h.mtime, h.mtimeNanoseconds)
    }

    private func makeSymlink(_ h: TarHeader, in pfd: Int32, name: [UInt8], shown: String) throws {
        guard !h.linkName.isEmpty else {
            throw ArchiveError(.invalidEntry, "symlink '\(shown)' has an empty target")
        }
        var r = creating(pfd) { withCName(h.linkName) { target in withCName(name) { symlinkat(target, pfd, $0) } } }
        if r != 0 && errno == EEXIST {
            _ = try replaceExisting(in: pfd, name: name, newIsDirectory: false, shown: shown)
            r = creating(pfd) { withCName(h.linkName) { target in withCName(name) { symlinkat(target, pfd, $0) } } }
        }
        if r != 0 { throw io("symlink", shown) }
        _ = withCName(name) { cl_set_mtime(pfd, $0, h.mtime, h.mtimeNanoseconds, 1) }
    }

    private func makeHardlink(_ h: TarHeader, in pfd: Int32, name: [UInt8], key: [UInt8], shown: String) throws {
        let target = printable(h.linkName)
        let (tcomps, _) = LayerExtractor.clean(h.linkName)
        guard let tname = tcomps.last else {
            throw ArchiveError(.invalidEntry, "hardlink '\(shown)' points at the root directory")
        }
        // The target's directory is resolved inside the root; its final component is never
        // followed (linkat without AT_SYMLINK_FOLLOW links a symlink itself).
        guard let (tfd, tpath) = try resolver.directory(Array(tcomps.dropLast()), create: false) else {
            throw ArchiveError(.invalidEntry, "hardlink '\(shown)': target '\(target)' not found in the layer root")
        }
        if RootResolver.join(tpath, tname) == key { return }
        var retried = false
        while true {
            let r = creating(pfd) { withCName(tname) { t in withCName(name) { linkat(tfd, t, pfd, $0, 0) } } }
            if r == 0 { return }
            let e = errno
            switch e {
            case EINTR:
                continue
            case EEXIST where !retried:
                retried = true
                var a = stat(), b = stat()
                if withCName(tname, { fstatat(tfd, $0, &a, AT_SYMLINK_NOFOLLOW) }) == 0,
                   withCName(name, { fstatat(pfd, $0, &b, AT_SYMLINK_NOFOLLOW) }) == 0,
                   a.st_dev == b.st_dev, a.st_ino == b.st_ino {
                    return   // already the same file
                }
                _ = try replaceExisting(in: pfd, name: name, newIsDirectory: false, shown: shown)
            case ENOENT:
                throw ArchiveError(.invalidEntry, "hardlink '\(shown)': target '\(target)' not found in the layer root")
            default:
                throw ArchiveError(.io, "link '\(shown)' to '\(target)': \(String(cString: strerror(e)))")
            }
        }
    }

    private func makeNode(_ h: TarHeader, in pfd: Int32, name: [UInt8], shown: String, device: Bool) throws {
        let perm = mode_t(h.mode & 0o777) | 0o600
        func create() -> Int32 {
            withCName(name) { n in
                if device {
                    let type: mode_t = h.type == .blockDevice ? 0o060000 : 0o020000
                    return cl_mknodat(pfd, n, type | perm, UInt32(h.devMajor), UInt32(h.devMinor))
                }
                return cl_mkfifoat(pfd, n, perm)
            }
        }
        var r = creating(pfd, create)
        if r != 0 && errno == EEXIST {
            _ = try replaceExisting(in: pfd, name: name, newIsDirectory: false, shown: shown)
            r = creating(pfd, create)
        }
        if r != 0 {
            if device && (errno == EPERM || errno == EACCES) {
                warn("skipped device node '\(shown)' (devices cannot be created without privileges)")
                return
            }
            throw io(device ? "mknod" : "mkfifo", shown)
        }
        if perm & ~umask != perm { _ = withCName(name) { cl_fchmodat_nofollow(pfd, $0, perm) } }
        _ = withCName(name) { cl_set_mtime(pfd, $0, h.mtime, h.mtimeNanoseconds, 1) }
    }

    /// Makes room for a new entry: an existing directory is kept when the new entry is a directory
    /// too (returns true: merge), anything else is removed (recursively for a directory, the link
    /// itself for a symlink or hardlink). Returns false when the name is now free.
    private func replaceExisting(in pfd: Int32, name: [UInt8], newIsDirectory: Bool, shown: String) throws -> Bool {
        var st = stat()
        guard withCName(name, { fstatat(pfd, $0, &st, AT_SYMLINK_NOFOLLOW) }) == 0 else {
            if errno == ENOENT { return false }
            throw io("stat", shown)
        }
        let fmt = st.st_mode & 0o170000
        if fmt == 0o040000 {
            if newIsDirectory { return true }
            try FileTree.removeEntry(in: pfd, name: name, displayPath: "/" + shown)
            resolver.invalidate()
            return false
        }
        if creating(pfd, { withCName(name) { unlinkat(pfd, $0, 0) } }) != 0 && errno != ENOENT { throw io("unlink", shown) }
        if fmt == 0o120000 { resolver.invalidate() }
        return false
    }

    // MARK: - whiteouts

    private func whiteout(_ parent: [[UInt8]], name: [UInt8], shown: String) throws {
        if name == LayerExtractor.opaqueName {
            try opaque(parent)
            return
        }
        let target = Array(name.dropFirst(LayerExtractor.whiteoutPrefix.count))
        if target.isEmpty || target == [0x2E] || target == [0x2E, 0x2E] {
            throw ArchiveError(.invalidEntry, "invalid whiteout entry '\(shown)'")
        }
        if target.starts(with: LayerExtractor.whiteoutPrefix) {
            return   // other AUFS metadata (.wh..wh.plnk, .wh..wh.aufs): never materialised
        }
        // Missing or dead parents (in root) mean there is nothing to remove.
        guard let (pfd, ppath) = try resolver.directory(parent, create: false) else { return }
        // Whiteouts hide lower layers only, never what this layer created.
        if resolver.touched.contains(RootResolver.join(ppath, target)) { return }
        var st = stat()
        guard withCName(target, { fstatat(pfd, $0, &st, AT_SYMLINK_NOFOLLOW) }) == 0 else { return }
        var pst = stat()
        let keepTimes = fstat(pfd, &pst) == 0
        try FileTree.removeEntry(in: pfd, name: target)
        let fmt = st.st_mode & 0o170000
        if fmt == 0o040000 || fmt == 0o120000 { resolver.invalidate() }
        if keepTimes { restoreTimes(pfd, pst) }
    }

    /// `.wh..wh..opq`: removes everything in the directory that this layer did not create
    /// (recursing into directories it did touch), whatever the entry order.
    private func opaque(_ dir: [[UInt8]]) throws {
        guard let (dfd, dpath) = try resolver.directory(dir, create: false) else { return }
        var pst = stat()
        let keepTimes = fstat(dfd, &pst) == 0
        if try removeUntouched(dfd, dpath) { resolver.invalidate() }
        if keepTimes { restoreTimes(dfd, pst) }
    }

    private func removeUntouched(_ fd: Int32, _ path: [UInt8]) throws -> Bool {
        var removed = false
        for entry in try FileTree.list(fd) {
            let key = RootResolver.join(path, entry.name)
            if !resolver.touched.contains(key) {
                if try FileTree.removeEntry(in: fd, name: entry.name) { removed = true }
                continue
            }
            var isDir = entry.isDirectory
            if !entry.isKnown {
                var st = stat()
                isDir = withCName(entry.name, { fstatat(fd, $0, &st, AT_SYMLINK_NOFOLLOW) }) == 0 && st.st_mode & 0o170000 == 0o040000
            }
            guard isDir else { continue }
            let child = withCName(entry.name) { openat(fd, $0, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) }
            guard child >= 0 else { continue }
            defer { close(child) }
            var cst = stat()
            let keep = fstat(child, &cst) == 0
            if try removeUntouched(child, key) {
                removed = true
                if keep { restoreTimes(child, cst) }
            }
        }
        return removed
    }

    private func restoreTimes(_ fd: Int32, _ st: stat) {
        _ = cl_set_times(fd, Int64(st.st_atim.tv_sec), Int64(st.st_atim.tv_nsec),
                         Int64(st.st_mtim.tv_sec), Int64(st.st_mtim.tv_nsec))
    }

    // MARK: - finishing

    /// Directory modes (with u+rwx) and mtimes, after all children are in.
    private func applyDirectoryMetadata() throws {
        for key in directoryOrder {
            guard let meta = directoryMeta[key] else { continue }
            resolver.trim()
            // Canonical path, walked with O_NOFOLLOW: if the directory was replaced later in the
            // layer by something else, it is skipped.
            guard let fd = try? resolver.directoryFD(canonical: key) else { continue }
            fchmod(fd, meta.mode)
            _ = cl_set_mtime(fd, nil, meta.sec, meta.nsec, 0)
        }
    }

    /// Runs a creating syscall in `pfd`; on EACCES/EPERM (a directory from a foreign lower layer
    /// without u+wx, when not privileged) gives the directory u+rwx and tries once more.
    private func creating(_ pfd: Int32, _ op: () -> Int32) -> Int32 {
        let r = op()
        if r < 0 && (errno == EACCES || errno == EPERM) {
            let saved = errno
            if FileTree.ensureOwnerRWX(fd: pfd) { return op() }
            errno = saved
        }
        return r
    }

    private func warn(_ message: String) {
        let m = "layer \(layerName): \(message)"
        warnings.append(m)
        options.warningHandler?(m)
    }

    private func io(_ op: String, _ shown: String) -> ArchiveError {
        ArchiveError(.io, "\(op) '/\(shown)': \(String(cString: strerror(errno)))")
    }
}
