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
    /// The umask applied to the modes in the archive (as udocker's `tar --no-same-permissions`
    /// does); nil: the process's. The owner always gets rw (files) and rwx (directories).
    public var umask: mode_t?
    /// Receives each warning as it happens (they are also collected in `LayerExtractor.warnings`).
    public var warningHandler: (@Sendable (OutputWarning) -> Void)?
    /// Size of the decompressed-data buffer.
    public var bufferSize = 1 << 20
    /// Size of the compressed-input buffer.
    public var inputBufferSize = 256 * 1024
    /// Decompress (and, with `hashOnDecodeThread`, hash) compressed layers read from regular
    /// files on a second thread, handing `pipelineChunkSize` chunks to the extracting thread
    /// through a queue of `pipelineDepth`.
    public var pipelined = true
    public var pipelineChunkSize = 1 << 20
    public var pipelineDepth = 3
    /// The DiffID hash runs on the decompressing thread, else on the extracting thread. With the
    /// writer pool creating the files, inflating is the slowest stage: hashing on the extracting
    /// thread made the 80 MB python layer 9 % faster (0.65 s vs 0.71 s, quiet ext4, 2 cores).
    public var hashOnDecodeThread = false
    /// Do not apply whiteouts (`.wh.<name>`, `.wh..wh..opq`): list them in
    /// `LayerExtractor.recordedWhiteouts` instead, as `LayerWhiteouts.scan` would (for extracting a
    /// layer on its own, e.g. as an overlayfs lower directory). Invalid whiteout names still throw.
    public var recordWhiteouts = false
    /// Threads that create regular files (`FileWriterPool`); 0 or 1 writes them on the extracting
    /// thread. File creation is mostly latency (parallel filesystems) or kernel time (local ones),
    /// which overlaps across threads.
    public var writerThreads = 2
    /// File data copied out of the stream and not yet written, at most (per extractor).
    public var writerMaxBytes = 32 << 20
    /// Files queued or being written, at most.
    public var writerMaxJobs = 1024
    /// Files larger than this are written by the extracting thread.
    public var writerInlineThreshold = 1 << 20
    /// Directories with queued files, at most (each holds a duplicated descriptor until its files
    /// are written; RLIMIT_NOFILE is often 1024).
    public var writerMaxDirectories = 128
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
    public private(set) var warnings: [OutputWarning] = []
    /// Entries applied so far over all layers (for progress).
    public private(set) var entriesApplied = 0
    /// The whiteouts of the last layer, with `ExtractOptions.recordWhiteouts` (in stream order).
    public private(set) var recordedWhiteouts: [LayerWhiteouts.Entry] = []

    private let resolver: RootResolver
    /// The process umask (what `open`/`mkdir` strip; a chmod puts back what it must not).
    private let umask: mode_t
    /// Bits removed from the archive's modes: `ExtractOptions.umask` or the process umask.
    private let modeMask: mode_t
    private var layerName = ""
    /// Directory metadata applied after the layer's entries (mode with u+rwx, mtime).
    private var directoryMeta: [[UInt8]: (mode: mode_t, sec: Int64, nsec: Int64)] = [:]
    private var directoryOrder: [[UInt8]] = []
    /// The producer side of the last pipelined extraction (nil when it ran on one thread).
    private(set) var lastPipelineReport: DecodePipeline.Report?
    /// The running pipeline (for tests).
    private(set) var currentPipeline: DecodePipeline?

    // Parallel file creation (see `FileWriterPool`), for the current layer.
    private var pool: FileWriterPool?
    /// Canonical paths of the files submitted to `pool` since its last drain.
    private var pending: Set<[UInt8]> = []
    /// Canonical paths of directories this layer created empty (and the root when the layer
    /// started on an empty root): a name in them exists only if this layer made it (`touched`).
    private var fresh: Set<[UInt8]> = []
    /// The directory fd shared by consecutive jobs in one directory.
    private var jobDirectory: (path: [UInt8], fd: Int32, dir: FileWriterPool.Directory)?
    /// Directory descriptors duplicated for jobs since the last drain (bounded by `writerMaxDirectories`).
    private var jobDirectoriesSinceDrain = 0
    /// The writer pool's counters for the last layer (nil when files were written inline).
    private(set) var lastWriterReport: FileWriterPool.Report?

    public init(root: String, options: ExtractOptions = .init()) throws {
        self.root = try RootDirectory(path: root)
        self.options = options
        resolver = try self.root.makeResolver()
        resolver.recordTouched = true
        umask = cl_current_umask()
        modeMask = options.umask ?? umask
    }

    public init(root: RootDirectory, options: ExtractOptions = .init()) throws {
        self.root = root
        self.options = options
        resolver = try root.makeResolver()
        resolver.recordTouched = true
        umask = cl_current_umask()
        modeMask = options.umask ?? umask
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
        recordedWhiteouts.removeAll()
        var pipeline: DecodePipeline?
        defer {
            if let pipeline { lastPipelineReport = pipeline.finalReport() }
            currentPipeline = nil
        }
        lastWriterReport = nil
        if options.writerThreads >= 2 {
            pool = FileWriterPool.start(threads: options.writerThreads, maxBytes: options.writerMaxBytes,
                                        maxJobs: options.writerMaxJobs)
        }
        defer {
            if let pool {
                pool.shutdown()
                lastWriterReport = pool.currentReport()
            }
            pool = nil
            pending.removeAll()
            fresh.removeAll()
            jobDirectory = nil
        }
        do {
            if pool != nil && rootIsEmpty() { fresh.insert([]) }
            let decoder = try Decompressor(fd: fd, inputCapacity: options.inputBufferSize)
            if options.pipelined && decoder.compression != .none && isRegularFile(fd) {
                pipeline = DecodePipeline.start(decoder: decoder, chunkSize: options.pipelineChunkSize,
                                                depth: options.pipelineDepth, hashing: options.hashOnDecodeThread)
                currentPipeline = pipeline
            }
            let buffer = HashedBuffer(source: decoder, capacity: options.bufferSize, pipeline: pipeline)
            let tar = TarReader(buffer: buffer)
            while let header = try tar.next() {
                resolver.trim()
                try apply(header, tar)
            }
            try buffer.drain()   // trailing bytes count in the DiffID
            try drainWriters()
            try applyDirectoryMetadata()
            return buffer.digest()
        } catch {
            // The files queued before the failing entry are written first: if one of them fails,
            // that earlier error is the one reported, as on one thread.
            var error = error
            if let pool, let e = pool.settle() { error = e }
            switch error {
            case let e as ArchiveError: throw e.inLayer(layerName)
            case let e as SystemError: throw ArchiveError(.io, e.description, layer: layerName)
            default: throw ArchiveError(.io, "\(error)", layer: layerName)
            }
        }
    }

    /// True when the root directory has no entries (checked once per layer, to know that names in
    /// it can only come from this layer).
    private func rootIsEmpty() -> Bool {
        let fd = openat(resolver.rootFD, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        guard let d = fdopendir(fd) else { close(fd); return false }
        defer { closedir(d) }
        while let e = readdir(d) {
            let isDot = withUnsafeBytes(of: e.pointee.d_name) { n in
                n[0] == 0x2E && (n[1] == 0 || (n[1] == 0x2E && n[2] == 0))
            }
            if !isDot { return false }
        }
        return true
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
        entriesApplied += 1
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
                record(.deviceNodeSkipped(layer: layerName, entry: shown))
                return
            }
        case .other(let t):
            warn("skipped entry '\(shown)' of unsupported type '\(Character(UnicodeScalar(t)))'")
            return
        default:
            break
        }
        // The parent walk makes directories of what is in its way: a queued file on the way must
        // exist first, so that the walk replaces it as it would on one thread.
        if !pending.isEmpty {
            var prefix: [UInt8] = []
            for c in comps.dropLast() {
                prefix = RootResolver.join(prefix, c)
                if pending.contains(prefix) { try drainWriters(); break }
            }
        }
        guard let (pfd, ppath) = try resolver.directory(Array(comps.dropLast()), create: true) else {
            throw ArchiveError(.io, "cannot create the parent directory of '\(shown)'")
        }
        let key = RootResolver.join(ppath, name)
        if pending.contains(key) { try drainWriters() }
        let madeInLayer = resolver.touched.contains(key)
        resolver.markTouched(key)
        switch h.type {
        case .regular:
            if let pool, h.size <= Int64(options.writerInlineThreshold) {
                try queueFile(h, tar, pool, in: pfd, ppath, name: name, key: key, madeInLayer: madeInLayer, shown: shown)
            } else {
                try writeFile(h, tar, in: pfd, name: name, shown: shown)
            }
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
        let perm = filePermissions(h)
        let flags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC
        var fd = createRetrying(pfd) { withCName(name) { openat(pfd, $0, flags, perm) } }
        if fd < 0 && errno == EEXIST {
            _ = try replaceExisting(in: pfd, name: name, newIsDirectory: false, shown: shown)
            fd = createRetrying(pfd) { withCName(name) { openat(pfd, $0, flags, perm) } }
        }
        guard fd >= 0 else { throw io("create", shown) }
        var closed = false
        defer { if !closed { close(fd) } }
        try tar.readData { chunk in try writeAll(fd, chunk, shown) }
        if perm & ~umask != perm { fchmod(fd, perm) }
        _ = cl_set_mtime(fd, nil, h.mtime, h.mtimeNanoseconds, 0)
        closed = true
        if close(fd) != 0 && errno != EINTR { throw io("close", shown) }
    }

    // MARK: - parallel file creation

    /// Hands a regular file to the writer pool. The name is made free here first (unless the
    /// directory is one this layer created empty and the name is not one this layer made), so a
    /// worker only ever creates a new name; its data is copied out of the stream.
    private func queueFile(_ h: TarHeader, _ tar: TarReader, _ pool: FileWriterPool, in pfd: Int32, _ ppath: [UInt8],
                           name: [UInt8], key: [UInt8], madeInLayer: Bool, shown: String) throws {
        if madeInLayer || !fresh.contains(ppath) {
            var st = stat()
            if withCName(name, { fstatat(pfd, $0, &st, AT_SYMLINK_NOFOLLOW) }) == 0 {
                _ = try replaceExisting(in: pfd, name: name, newIsDirectory: false, shown: shown)
            } else if errno != ENOENT {
                // Unusual (a name too long, a locked directory): the single-threaded path reports it.
                try writeFile(h, tar, in: pfd, name: name, shown: shown)
                return
            }
        }
        let dir: FileWriterPool.Directory
        if let d = jobDirectory, d.fd == pfd, d.path == ppath {
            dir = d.dir
        } else {
            if jobDirectoriesSinceDrain >= options.writerMaxDirectories { try drainWriters() }
            var d = FileWriterPool.Directory(duplicating: pfd)
            if d == nil && (errno == EMFILE || errno == ENFILE) && !pending.isEmpty {
                try drainWriters()   // the queued jobs' descriptors are closed once they are written
                d = FileWriterPool.Directory(duplicating: pfd)
            }
            guard let d else {
                // Out of descriptors even so: this file is written here, without a job.
                try writeFile(h, tar, in: pfd, name: name, shown: shown)
                return
            }
            jobDirectoriesSinceDrain += 1
            jobDirectory = (ppath, pfd, d)
            dir = d
        }
        let perm = filePermissions(h)
        let job = FileWriterPool.Job(directory: dir, name: name, shown: shown, perm: perm,
                                     needsChmod: perm & ~umask != perm, mtime: h.mtime,
                                     mtimeNanoseconds: h.mtimeNanoseconds, size: Int(h.size))
        var offset = 0
        try tar.readData { chunk in
            guard let base = chunk.baseAddress, !chunk.isEmpty else { return }
            (job.data.baseAddress! + offset).copyMemory(from: base, byteCount: chunk.count)
            offset += chunk.count
        }
        pending.insert(key)
        try pool.submit(job)
    }

    /// Waits for every queued file (rethrowing the first worker error) and redoes, with the usual
    /// replace-and-retry, the ones whose name was found taken.
    private func drainWriters() throws {
        jobDirectoriesSinceDrain = 0
        guard let pool, !pending.isEmpty else { return }
        let conflicts = try pool.drain()
        pending.removeAll(keepingCapacity: true)
        for job in conflicts {
            _ = try FileWriterPool.write(job) {
                _ = try self.replaceExisting(in: job.directory.fd, name: job.name, newIsDirectory: false, shown: job.shown)
            }
        }
    }

    /// `resolver.invalidate()`, and forgets what was known about directories (one was removed or
    /// replaced).
    private func invalidateResolver() {
        resolver.invalidate()
        fresh.removeAll()
        jobDirectory = nil
    }

    private func makeDirectory(_ h: TarHeader, in pfd: Int32, name: [UInt8], key: [UInt8], shown: String) throws {
        // Created u+rwx so the rest of the layer can go in; the final mode is applied afterwards.
        var r = createRetrying(pfd) { withCName(name) { mkdirat(pfd, $0, 0o700) } }
        if r != 0 && errno == EEXIST {
            if try !replaceExisting(in: pfd, name: name, newIsDirectory: true, shown: shown) {
                r = createRetrying(pfd) { withCName(name) { mkdirat(pfd, $0, 0o700) } }
                if r != 0 { throw io("mkdir", shown) }
                if pool != nil { fresh.insert(key) }
            }
        } else if r != 0 {
            throw io("mkdir", shown)
        } else if pool != nil {
            fresh.insert(key)
        }
        if 0o700 & ~umask != 0o700 { _ = withCName(name) { cl_fchmodat_nofollow(pfd, $0, 0o700) } }
        if directoryMeta[key] == nil { directoryOrder.append(key) }
        directoryMeta[key] = (directoryPermissions(h), h.mtime, h.mtimeNanoseconds)
    }

    /// A file's mode: the archive's rwx bits minus the umask, plus u+rw; setuid/setgid dropped
    /// (udocker's tar for a user does the same).
    private func filePermissions(_ h: TarHeader) -> mode_t { (mode_t(h.mode & 0o777) & ~modeMask) | 0o600 }

    /// A directory's mode: rwx bits minus the umask, plus u+rwx, and the sticky bit kept (an image's
    /// `/tmp` 1777 becomes 1755 under umask 022, never a world-writable directory without it).
    /// GNU tar as used by udocker drops the sticky bit (0755): same access for others, and with
    /// a permissive umask (002, 000) a group- or world-writable directory stays sticky here.
    private func directoryPermissions(_ h: TarHeader) -> mode_t {
        (mode_t(h.mode & 0o777) & ~modeMask) | 0o700 | mode_t(h.mode & 0o1000)
    }

    private func makeSymlink(_ h: TarHeader, in pfd: Int32, name: [UInt8], shown: String) throws {
        guard !h.linkName.isEmpty else {
            throw ArchiveError(.invalidEntry, "symlink '\(shown)' has an empty target")
        }
        var r = createRetrying(pfd) { withCName(h.linkName) { target in withCName(name) { symlinkat(target, pfd, $0) } } }
        if r != 0 && errno == EEXIST {
            _ = try replaceExisting(in: pfd, name: name, newIsDirectory: false, shown: shown)
            r = createRetrying(pfd) { withCName(h.linkName) { target in withCName(name) { symlinkat(target, pfd, $0) } } }
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
        if pending.contains(RootResolver.join(tpath, tname)) { try drainWriters() }
        var retried = false
        while true {
            let r = createRetrying(pfd) { withCName(tname) { t in withCName(name) { linkat(tfd, t, pfd, $0, 0) } } }
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
        let perm = filePermissions(h)
        func create() -> Int32 {
            withCName(name) { n in
                if device {
                    let type: mode_t = h.type == .blockDevice ? 0o060000 : 0o020000
                    return cl_mknodat(pfd, n, type | perm, UInt32(h.devMajor), UInt32(h.devMinor))
                }
                return cl_mkfifoat(pfd, n, perm)
            }
        }
        var r = createRetrying(pfd, create)
        if r != 0 && errno == EEXIST {
            _ = try replaceExisting(in: pfd, name: name, newIsDirectory: false, shown: shown)
            r = createRetrying(pfd, create)
        }
        if r != 0 {
            if device && (errno == EPERM || errno == EACCES) {
                record(.deviceNodeSkipped(layer: layerName, entry: shown))
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
            try drainWriters()   // queued files may be in it
            try FileTree.removeEntry(in: pfd, name: name, displayPath: "/" + shown)
            invalidateResolver()
            return false
        }
        if createRetrying(pfd, { withCName(name) { unlinkat(pfd, $0, 0) } }) != 0 && errno != ENOENT { throw io("unlink", shown) }
        if fmt == 0o120000 { invalidateResolver() }
        return false
    }

    // MARK: - whiteouts

    private func whiteout(_ parent: [[UInt8]], name: [UInt8], shown: String) throws {
        if name == LayerExtractor.opaqueName {
            if options.recordWhiteouts {
                recordedWhiteouts.append(LayerWhiteouts.Entry(parent: parent, name: nil))
                return
            }
            try drainWriters()
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
        if options.recordWhiteouts {
            recordedWhiteouts.append(LayerWhiteouts.Entry(parent: parent, name: target))
            return
        }
        try drainWriters()
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
        if fmt == 0o040000 || fmt == 0o120000 { invalidateResolver() }
        if keepTimes { restoreTimes(pfd, pst) }
    }

    /// `.wh..wh..opq`: removes everything in the directory that this layer did not create
    /// (recursing into directories it did touch), whatever the entry order.
    private func opaque(_ dir: [[UInt8]]) throws {
        guard let (dfd, dpath) = try resolver.directory(dir, create: false) else { return }
        var pst = stat()
        let keepTimes = fstat(dfd, &pst) == 0
        if try removeUntouched(dfd, dpath) { invalidateResolver() }
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

    private func warn(_ message: String) { record(.text("layer \(layerName): \(message)")) }

    private func record(_ w: OutputWarning) {
        warnings.append(w)
        options.warningHandler?(w)
    }

    private func io(_ op: String, _ shown: String) -> ArchiveError { ioError(op, shown) }
}
