import UDockerSystem
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
