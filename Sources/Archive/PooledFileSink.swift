#if canImport(Glibc)
import Glibc
#endif

/// The writer pool of one layer (`FileWriterPool`) and what the extracting thread must know about
/// the files it queued: which names are still pending, which directories this layer created
/// empty (a name in them is free unless this layer made it), and the directory descriptor shared
/// by consecutive jobs. Started per layer and shut down with it.
final class PooledFileSink {
    private let pool: FileWriterPool
    private let maxDirectories: Int
    /// Canonical paths of the files submitted since the last drain.
    private var pending: Set<[UInt8]> = []
    /// Canonical paths of directories this layer created empty (and the root when the layer
    /// started on an empty root).
    private var fresh: Set<[UInt8]> = []
    /// The directory fd shared by consecutive jobs in one directory.
    private var jobDirectory: (path: [UInt8], fd: Int32, dir: FileWriterPool.Directory)?
    /// Directory descriptors duplicated for jobs since the last drain (bounded by `writerMaxDirectories`).
    private var directoriesSinceDrain = 0

    /// Starts the pool. Returns nil when no worker can be started (files are then written inline).
    static func start(_ options: ExtractOptions) -> PooledFileSink? {
        guard
            let pool = FileWriterPool.start(
                threads: options.writerThreads, maxBytes: options.writerMaxBytes,
                maxJobs: options.writerMaxJobs)
        else { return nil }
        return PooledFileSink(pool: pool, maxDirectories: options.writerMaxDirectories)
    }

    private init(pool: FileWriterPool, maxDirectories: Int) {
        self.pool = pool
        self.maxDirectories = maxDirectories
    }

    var hasPending: Bool { !pending.isEmpty }
    func isPending(_ key: [UInt8]) -> Bool { pending.contains(key) }
    func isFresh(_ directory: [UInt8]) -> Bool { fresh.contains(directory) }
    func markFresh(_ directory: [UInt8]) { fresh.insert(directory) }

    /// A directory was removed or replaced: forget what was known about directories.
    func forgetDirectories() {
        fresh.removeAll()
        jobDirectory = nil
    }

    /// The shared descriptor for jobs in the directory `pfd` (canonical path `path`), draining
    /// first (`drain`) when too many are held or descriptors run out. Nil when none can be had.
    func directory(_ pfd: Int32, _ path: [UInt8], drain: () throws -> Void) throws -> FileWriterPool.Directory? {
        if let d = jobDirectory, d.fd == pfd, d.path == path { return d.dir }
        if directoriesSinceDrain >= maxDirectories { try drain() }
        var d = FileWriterPool.Directory(duplicating: pfd)
        if d == nil && (errno == EMFILE || errno == ENFILE) && !pending.isEmpty {
            try drain()  // the queued jobs' descriptors are closed once they are written
            d = FileWriterPool.Directory(duplicating: pfd)
        }
        guard let d else { return nil }
        directoriesSinceDrain += 1
        jobDirectory = (path, pfd, d)
        return d
    }

    /// Copies the entry's data out of the stream and queues it as a job creating `name` in `dir`.
    func submit(
        _ h: TarHeader, _ tar: TarReader, in dir: FileWriterPool.Directory, name: [UInt8], key: [UInt8],
        shown: String, perm: mode_t, needsChmod: Bool
    ) throws {
        let job = FileWriterPool.Job(
            directory: dir, name: name, shown: shown, perm: perm,
            needsChmod: needsChmod, mtime: h.mtime,
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

    /// Waits for every queued file; throws the first worker error, else returns the jobs whose
    /// name was found taken (the caller redoes them).
    func drain() throws -> [FileWriterPool.Job] {
        directoriesSinceDrain = 0
        guard !pending.isEmpty else { return [] }
        let conflicts = try pool.drain()
        pending.removeAll(keepingCapacity: true)
        return conflicts
    }

    /// After an error elsewhere: waits for the queued files and returns the first worker error.
    func settle() -> ArchiveError? { pool.settle() }

    /// Stops and joins the workers; returns the pool's counters.
    func shutdown() -> FileWriterPool.Report {
        pool.shutdown()
        return pool.currentReport()
    }
}
