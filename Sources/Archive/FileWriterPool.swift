import CLinux
import UDockerSystem
#if canImport(Glibc)
import Glibc
#endif

/// Creates regular files on a few worker threads, so that the per-file latency of the filesystem
/// (a metadata round trip on parallel filesystems, inode allocation on local ones) overlaps.
///
/// `LayerExtractor` keeps every decision on its own thread (path resolution, replacing what is in
/// the way, whiteouts, ordering) and hands the pool only jobs that are safe to run in any order: a
/// new regular file in a directory where its name is known to be free, with its data already
/// copied out of the tar stream. The extractor waits for all jobs (`drain`) before anything that
/// could observe or disturb a queued file.
///
/// A worker does exactly what the single-threaded path does (`openat(O_CREAT|O_EXCL|O_NOFOLLOW)`,
/// write, `fchmod` when the umask would strip bits, mtime, close, one retry after giving the
/// directory u+rwx on EACCES/EPERM). When the name turns out to be taken:
///   - by a directory: a later entry's path walk made it a directory (through a symlink that the
///     extractor's lexical check cannot see); sequentially the file would have been created and
///     then replaced by that directory, so the job is done;
///   - by anything else (not expected: the extractor checked the name was free): the job goes back
///     to the extractor, which redoes it after the drain with the usual replace-and-retry.
///
/// Memory is bounded (`maxBytes` of file data and `maxJobs` jobs queued or running); `submit`
/// blocks when over. The first worker error is kept and thrown by the next `submit` or `drain`;
/// after it no further job starts (queued ones are dropped, closing their fds).
final class FileWriterPool: @unchecked Sendable {
    /// A directory fd shared by the jobs of one directory (a `dup` of the resolver's fd, which the
    /// resolver may close at any `trim()`). Closed when the last job using it is done.
    final class Directory: @unchecked Sendable {
        let fd: Int32
        init?(duplicating fd: Int32) {
            let d = fcntl(fd, F_DUPFD_CLOEXEC, 0)
            guard d >= 0 else { return nil }
            self.fd = d
        }
        deinit { close(fd) }
    }

    /// One regular file to create.
    final class Job: @unchecked Sendable {
        let directory: Directory
        let name: [UInt8]
        /// The entry as shown in messages (no leading slash).
        let shown: String
        let perm: mode_t
        /// The umask would strip bits of `perm`: fchmod after creating.
        let needsChmod: Bool
        let mtime: Int64
        let mtimeNanoseconds: Int64
        let data: UnsafeMutableRawBufferPointer

        init(
            directory: Directory, name: [UInt8], shown: String, perm: mode_t, needsChmod: Bool,
            mtime: Int64, mtimeNanoseconds: Int64, size: Int
        ) {
            self.directory = directory
            self.name = name
            self.shown = shown
            self.perm = perm
            self.needsChmod = needsChmod
            self.mtime = mtime
            self.mtimeNanoseconds = mtimeNanoseconds
            data = .allocate(byteCount: size, alignment: 16)
        }
        deinit { data.deallocate() }
    }

    /// What a job came to.
    enum Outcome {
        case written
        /// The name was taken by a directory made later in the layer (see the type's comment).
        case superseded
        /// The name was taken by something else: the extractor redoes the job.
        case exists
    }

    /// Counters (for tests and measurements).
    struct Report: Equatable {
        var threadsStarted = 0
        var threadsJoined = 0
        var jobsWritten = 0
        var jobsSuperseded = 0
        var conflicts = 0
        var drains = 0
        /// `submit` waited for room in the queue.
        var waitsForRoom = 0
        var peakBytes = 0
    }

    let maxBytes: Int
    let maxJobs: Int

    private let lock = ConditionLock(conditions: 2)
    /// Signalled when a job is queued or the pool stops (workers wait on it).
    private let workAvailable = ConditionLock.Condition(0)
    /// Signalled when a job finishes (the extractor waits on it for room or for idleness).
    private let jobDone = ConditionLock.Condition(1)
    private var threads: [WorkerThread] = []

    // Shared state, under `lock`.
    private var queue: [Job] = []
    private var head = 0
    private var running = 0
    private var bytes = 0
    private var stopping = false
    private var firstError: ArchiveError?
    private var conflicts: [Job] = []
    private var report = Report()

    /// Starts `threads` workers. Returns nil when none can be started (the caller writes inline).
    static func start(threads: Int, maxBytes: Int, maxJobs: Int) -> FileWriterPool? {
        let pool = FileWriterPool(maxBytes: maxBytes, maxJobs: maxJobs)
        for _ in 0..<max(threads, 1) {
            guard let tid = WorkerThread.start({ pool.work() }) else { break }
            pool.threads.append(tid)
        }
        pool.report.threadsStarted = pool.threads.count
        if pool.threads.isEmpty { return nil }
        return pool
    }

    private init(maxBytes: Int, maxJobs: Int) {
        self.maxBytes = max(maxBytes, 1)
        self.maxJobs = max(maxJobs, 1)
    }

    deinit {
        // Owners call shutdown(); the workers hold a reference until they exit, so by now they are
        // gone (or this runs on the last one, which must not join itself).
        for t in threads where !t.isCurrent { t.join() }
    }

    // MARK: - extractor side

    /// Queues a job, waiting while the queue is full (by bytes or by count). Throws the first
    /// worker error instead of queuing once there is one.
    func submit(_ job: Job) throws {
        lock.lock()
        defer { lock.unlock() }
        let size = job.data.count
        let waited = lock.wait(on: jobDone) {
            firstError == nil && (queue.count - head) + running > 0
                && (bytes + size > maxBytes || (queue.count - head) + running >= maxJobs)
        }
        if waited { report.waitsForRoom += 1 }
        if let e = firstError { throw e }
        queue.append(job)
        bytes += size
        report.peakBytes = max(report.peakBytes, bytes)
        lock.signal(workAvailable)
    }

    /// True when jobs are queued or running (not synchronised with the workers: only "maybe idle").
    var isBusy: Bool {
        lock.lock()
        defer { lock.unlock() }
        return (queue.count - head) + running > 0 || !conflicts.isEmpty
    }

    /// Waits until every queued job has finished. Throws the first worker error; otherwise returns
    /// the jobs whose name was taken (`Outcome.exists`), for the caller to redo.
    func drain() throws -> [Job] {
        lock.lock()
        defer { lock.unlock() }
        waitIdleLocked()
        report.drains += 1
        if let e = firstError { throw e }
        let c = conflicts
        conflicts.removeAll()
        return c
    }

    /// After an error elsewhere: waits for the queued jobs (so that an earlier entry's failure is
    /// the one reported, as single-threaded) and returns the first worker error, if any.
    func settle() -> ArchiveError? {
        lock.lock()
        defer { lock.unlock() }
        waitIdleLocked()
        conflicts.removeAll()
        return firstError
    }

    private func waitIdleLocked() {
        lock.wait(on: jobDone) { (queue.count - head) + running > 0 }
    }

    /// Stops the workers (queued jobs are dropped) and joins them. Idempotent.
    func shutdown() {
        lock.lock()
        stopping = true
        lock.broadcast(workAvailable)
        lock.unlock()
        let ts = threads
        threads.removeAll()
        for t in ts { t.join() }
        lock.lock()
        report.threadsJoined += ts.count
        queue.removeAll()
        head = 0
        bytes = 0
        conflicts.removeAll()
        lock.unlock()
    }

    func currentReport() -> Report {
        lock.lock()
        defer { lock.unlock() }
        return report
    }

    // MARK: - workers

    private func work() {
        lock.lock()
        while true {
            lock.wait(on: workAvailable) { head == queue.count && !stopping }
            if stopping { break }
            let job = queue[head]
            head += 1
            if head == queue.count { queue.removeAll(keepingCapacity: true); head = 0 }
            if firstError != nil {
                bytes -= job.data.count
                lock.broadcast(jobDone)
                continue  // dropped: no job starts after an error
            }
            running += 1
            lock.unlock()

            var outcome = Outcome.written
            var error: ArchiveError?
            do { outcome = try FileWriterPool.write(job, replace: nil) } catch let e as ArchiveError {
                error = e
            } catch {
                fatalError("unexpected error \(error)")
            }

            lock.lock()
            running -= 1
            bytes -= job.data.count
            if let error {
                if firstError == nil { firstError = error }
            } else {
                switch outcome {
                case .written: report.jobsWritten += 1
                case .superseded: report.jobsSuperseded += 1
                case .exists: conflicts.append(job); report.conflicts += 1
                }
            }
            lock.broadcast(jobDone)
        }
        lock.unlock()
    }

    /// Creates the job's file. When the name is taken by a non-directory: with `replace`, calls it
    /// (it makes room) and tries once more; without, returns `.exists`.
    static func write(_ job: Job, replace: (() throws -> Void)?) throws -> Outcome {
        let dfd = job.directory.fd
        let flags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC
        var fd = createRetrying(dfd) { withCName(job.name) { openat(dfd, $0, flags, job.perm) } }
        if fd < 0 && errno == EEXIST {
            if let replace {
                try replace()
                fd = createRetrying(dfd) { withCName(job.name) { openat(dfd, $0, flags, job.perm) } }
            } else {
                var st = stat()
                if withCName(job.name, { fstatat(dfd, $0, &st, AT_SYMLINK_NOFOLLOW) }) == 0 {
                    return st.st_mode & 0o170000 == 0o040000 ? .superseded : .exists
                }
                return .exists
            }
        }
        guard fd >= 0 else { throw ioError("create", job.shown) }
        var closed = false
        defer { if !closed { close(fd) } }
        if job.data.count > 0 {
            try writeAll(fd, UnsafeRawBufferPointer(job.data), job.shown)
        }
        if job.needsChmod { fchmod(fd, job.perm) }
        _ = cl_set_mtime(fd, nil, job.mtime, job.mtimeNanoseconds, 0)
        closed = true
        if close(fd) != 0 && errno != EINTR { throw ioError("close", job.shown) }
        return .written
    }
}

/// Runs a creating syscall in `dirFD`; on EACCES/EPERM (a directory from a foreign lower layer
/// without u+wx, when not privileged) gives the directory u+rwx and tries once more.
func createRetrying(_ dirFD: Int32, _ op: () -> Int32) -> Int32 {
    let r = op()
    if r < 0 && (errno == EACCES || errno == EPERM) {
        let saved = errno
        if FileTree.ensureOwnerRWX(fd: dirFD) { return op() }
        errno = saved
    }
    return r
}

/// Writes all of `chunk` to `fd` (retrying short writes and EINTR).
func writeAll(_ fd: Int32, _ chunk: UnsafeRawBufferPointer, _ shown: String) throws {
    guard var p = chunk.baseAddress else { return }
    var left = chunk.count
    while left > 0 {
        let n = write(fd, p, left)
        if n < 0 {
            if errno == EINTR { continue }
            throw ioError("write", shown)
        }
        p += n
        left -= n
    }
}

/// The extraction error for a failed syscall on an entry (uses `errno`).
func ioError(_ op: String, _ shown: String) -> ArchiveError {
    ArchiveError.io(op, "'/\(shown)'")
}
