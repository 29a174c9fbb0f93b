import CLinux
import UDockerSystem
#if canImport(Glibc)
import Glibc
#endif

/// One layer being applied to a root: what lives only as long as the layer (its name, the
/// directory metadata to set at the end, the recorded whiteouts, the writer pool). Made by
/// `LayerExtractor.extract` for each layer and dropped with it, so nothing needs resetting.
///
/// Entries are in `LayerApplication+Entries.swift`, whiteouts in `LayerApplication+Whiteouts.swift`.
final class LayerApplication {
    let layerName: String
    let options: ExtractOptions
    let resolver: RootResolver
    /// The process umask (what `open`/`mkdir` strip; a chmod puts back what it must not).
    let umask: mode_t
    /// Bits removed from the archive's modes: `ExtractOptions.umask` or the process umask.
    let modeMask: mode_t
    /// Parallel file creation (nil: files are written on this thread).
    let sink: PooledFileSink?
    unowned let extractor: LayerExtractor

    /// Directory metadata applied after the layer's entries (mode with u+rwx, mtime).
    var directoryMeta: [[UInt8]: (mode: mode_t, sec: Int64, nsec: Int64)] = [:]
    var directoryOrder: [[UInt8]] = []
    /// With `ExtractOptions.recordWhiteouts`, in stream order.
    var recordedWhiteouts: [LayerWhiteouts.Entry] = []

    init(_ extractor: LayerExtractor, layerName: String, sink: PooledFileSink?) {
        self.extractor = extractor
        self.layerName = layerName
        options = extractor.options
        resolver = extractor.resolver
        umask = extractor.umask
        modeMask = extractor.modeMask
        self.sink = sink
    }

    /// After the last entry: waits for the queued files, then sets the directories' metadata.
    func finish() throws {
        try drainWriters()
        try applyDirectoryMetadata()
    }

    func apply(_ h: TarHeader, _ tar: TarReader) throws {
        extractor.entriesApplied += 1
        let shown = printable(h.path)
        let (comps, clamped) = LayerExtractor.clean(h.path)
        guard let name = comps.last else {
            if h.type == .directory { return }  // "./": the root's own metadata is not changed
            throw ArchiveError(.invalidEntry, "refusing to change the type of the root directory (entry '\(shown)')")
        }
        if clamped {
            warn("entry '\(shown)' climbs above the root; extracted inside it")
        }
        if name.starts(with: Self.whiteoutPrefix) {
            try whiteout(Array(comps.dropLast()), name: name, shown: shown)
            return
        }
        switch h.type {
        case .characterDevice, .blockDevice:
            guard (0...Int64(UInt32.max)).contains(h.devMajor), (0...Int64(UInt32.max)).contains(h.devMinor) else {
                throw ArchiveError(.invalidEntry, "impossible device number in entry '\(shown)'")
            }
            if options.skipDevices {
                extractor.record(warning: .deviceNodeSkipped(layer: layerName, entry: shown))
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
        if let sink, sink.hasPending {
            var prefix: [UInt8] = []
            for c in comps.dropLast() {
                prefix = RootResolver.join(prefix, c)
                if sink.isPending(prefix) { try drainWriters(); break }
            }
        }
        guard let (pfd, ppath) = try resolver.directory(Array(comps.dropLast()), create: true) else {
            throw ArchiveError(.io, "cannot create the parent directory of '\(shown)'")
        }
        let key = RootResolver.join(ppath, name)
        if sink?.isPending(key) == true { try drainWriters() }
        let madeInLayer = resolver.touched.contains(key)
        resolver.markTouched(key)
        switch h.type {
        case .regular:
            if let sink, h.size <= Int64(options.writerInlineThreshold) {
                try queueFile(h, tar, sink, in: pfd, ppath, name: name, key: key, madeInLayer: madeInLayer, shown: shown)
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

    /// Waits for every queued file (rethrowing the first worker error) and redoes, with the usual
    /// replace-and-retry, the ones whose name was found taken.
    func drainWriters() throws {
        guard let sink else { return }
        for job in try sink.drain() {
            _ = try FileWriterPool.write(job) {
                _ = try self.replaceExisting(in: job.directory.fd, name: job.name, newIsDirectory: false, shown: job.shown)
            }
        }
    }

    /// `resolver.invalidate()`, and forgets what was known about directories (one was removed or
    /// replaced).
    func invalidateResolver() {
        resolver.invalidate()
        sink?.forgetDirectories()
    }

    /// Makes room for a new entry: an existing directory is kept when the new entry is a directory
    /// too (returns true: merge), anything else is removed (recursively for a directory, the link
    /// itself for a symlink or hardlink). Returns false when the name is now free.
    func replaceExisting(in pfd: Int32, name: [UInt8], newIsDirectory: Bool, shown: String) throws -> Bool {
        var st = stat()
        guard withCName(name, { fstatat(pfd, $0, &st, AT_SYMLINK_NOFOLLOW) }) == 0 else {
            if errno == ENOENT { return false }
            throw ioError("stat", shown)
        }
        let fmt = st.st_mode & 0o170000
        if fmt == 0o040000 {
            if newIsDirectory { return true }
            try drainWriters()  // queued files may be in it
            try FileTree.removeEntry(in: pfd, name: name, displayPath: "/" + shown)
            invalidateResolver()
            return false
        }
        if createRetrying(pfd, { withCName(name) { unlinkat(pfd, $0, 0) } }) != 0 && errno != ENOENT { throw ioError("unlink", shown) }
        if fmt == 0o120000 { invalidateResolver() }
        return false
    }

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

    func warn(_ message: String) {
        extractor.record(warning: .text("layer \(layerName): \(message)"))
    }
}
