import CLinux
import OCI
import UDockerSystem
#if canImport(Glibc)
import Glibc
#endif

/// Streams OCI/Docker layers into a container root in one pass: decompression (gzip, zstd or
/// none, from magic bytes), tar parsing, whiteouts and the DiffID hash, with every path resolved
/// inside the root by `RootResolver` (no string joins, no host-path syscalls).
///
/// Layers are applied base first, by calling `extract` once per layer on the same root. The
/// extractor holds what lives as long as the root (the resolver, the modes, the warnings); each
/// layer is applied by a `LayerApplication` that dies with the layer.
public final class LayerExtractor {
    public let root: RootDirectory
    public let options: ExtractOptions
    public private(set) var warnings: [OutputWarning] = []
    /// Entries applied so far over all layers (for progress).
    public internal(set) var entriesApplied = 0
    /// The whiteouts of the last layer, with `ExtractOptions.recordWhiteouts` (in stream order).
    public private(set) var recordedWhiteouts: [LayerWhiteouts.Entry] = []

    let resolver: RootResolver
    /// The process umask (what `open`/`mkdir` strip; a chmod puts back what it must not).
    let umask: mode_t
    /// Bits removed from the archive's modes: `ExtractOptions.umask` or the process umask.
    let modeMask: mode_t
    /// The producer side of the last pipelined extraction (nil when it ran on one thread).
    private(set) var lastPipelineReport: DecodePipeline.Report?
    /// The running pipeline (for tests).
    private(set) var currentPipeline: DecodePipeline?
    /// The writer pool's counters for the last layer (nil when files were written inline).
    private(set) var lastWriterReport: FileWriterPool.Report?

    public convenience init(root: String, options: ExtractOptions = .init()) throws {
        try self.init(root: try RootDirectory(path: root), options: options)
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
            throw ArchiveError(SystemError("open", path: path), context: ArchiveError.layerContext(name))
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
        resolver.resetForLayer()
        defer { resolver.resetForLayer() }
        lastPipelineReport = nil
        lastWriterReport = nil
        recordedWhiteouts.removeAll()
        let sink = options.writerThreads >= 2 ? PooledFileSink.start(options) : nil
        let layer = LayerApplication(self, layerName: layerName, sink: sink)
        var pipeline: DecodePipeline?
        defer {
            if let pipeline { lastPipelineReport = pipeline.finalReport() }
            currentPipeline = nil
            lastWriterReport = sink?.shutdown()
            recordedWhiteouts = layer.recordedWhiteouts
        }
        do {
            if let sink, rootIsEmpty() { sink.markFresh([]) }
            let decoder = try Decompressor(fd: fd, inputCapacity: options.inputBufferSize)
            if options.pipelined && decoder.compression != .none && isRegularFile(fd) {
                pipeline = DecodePipeline.start(
                    decoder: decoder, chunkSize: options.pipelineChunkSize,
                    depth: options.pipelineDepth, hashing: options.hashOnDecodeThread)
                currentPipeline = pipeline
            }
            let buffer = HashedBuffer(source: decoder, capacity: options.bufferSize, pipeline: pipeline)
            let tar = TarReader(buffer: buffer)
            while let header = try tar.next() {
                resolver.trim()
                try layer.apply(header, tar)
            }
            try buffer.drain()  // trailing bytes count in the DiffID
            try layer.finish()
            return buffer.digest()
        } catch {
            // The files queued before the failing entry are written first: if one of them fails,
            // that earlier error is the one reported, as on one thread.
            var error = error
            if let sink, let e = sink.settle() { error = e }
            throw ArchiveError(wrapping: error, layer: layerName)
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

    /// Records a warning (already prefixed with its layer) and hands it to the handler.
    func record(warning w: OutputWarning) {
        warnings.append(w)
        options.warningHandler?(w)
    }
}

private extension RootResolver {
    /// Forgets the previous layer's cached descriptors and touched names.
    func resetForLayer() {
        invalidate()
        trim()
        resetTouched()
    }
}
