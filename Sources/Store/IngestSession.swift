import FoundationEssentials
import OCI
import UDockerSystem
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// One blob being written into `layers/`: normally `<final>.partial`, held under an exclusive
/// `flock` so that concurrent pullers never write the same file and an interrupted run can resume it.
///
/// Where the filesystem refuses locks (ENOLCK/ENOSYS/EOPNOTSUPP: Lustre `noflock`, some NFS and
/// FUSE mounts) the bytes go to a file of this process's own, `<final>.<pid>-<random>.partial`,
/// which no other puller ever opens: a leftover `<final>.partial` is taken over by renaming it
/// to that name (one process wins the rename), and an interrupted download is parked back under
/// `<final>.partial` only if that name is free. Publication never replaces a verified blob that
/// another process published first (`renameat2(RENAME_NOREPLACE)`).
public final class IngestSession: BlobWriter {
    public let path: String
    let final: String
    let directory: String
    private(set) var fd: Int32
    /// Without working locks: the shared name this private file is parked under when closed
    /// unfinished (nil when `path` is the locked shared `.partial`).
    let parkAs: String?
    private var finished = false
    /// Bytes before this offset have been handed to writeback (`sync_file_range`).
    private var flushedUpTo: Int64 = 0
    /// Writeback is started every `writebackStep` bytes while downloading, so the fsync before
    /// publication only waits for the tail.
    static let writebackStep: Int64 = 8 << 20

    private init(path: String, final: String, directory: String, fd: Int32, parkAs: String? = nil) {
        self.path = path; self.final = final; self.directory = directory; self.fd = fd; self.parkAs = parkAs
    }

    static func size(of path: String) -> Int64? {
        var st = stat()
        guard stat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return nil }
        return Int64(st.st_size)
    }

    /// Opens and locks `path`. Returns nil when, once the lock is ours, `final` already exists
    /// with the expected size (another process finished it). Re-opens if the file we locked was
    /// renamed or removed by the previous holder. Without locks, returns a private file instead.
    static func openLocked(
        _ path: String, final: String, directory: String, size: Int64,
        onWait: () -> Void
    ) async throws -> IngestSession? {
        var announced = false
        while true {
            try Task.checkCancellation()
            let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o644)
            guard fd >= 0 else { throw SystemError("open", path: path) }
            var locked = false
            while !locked {
                if flock(fd, LOCK_EX | LOCK_NB) == 0 { locked = true; break }
                let e = errno
                if e == EINTR { continue }
                if e == EWOULDBLOCK {
                    if !announced { announced = true; onWait() }
                    do { try await Task.sleep(nanoseconds: 200_000_000) } catch { Glibc.close(fd); throw error }
                    continue
                }
                if e == ENOLCK || e == EOPNOTSUPP || e == ENOSYS {
                    Glibc.close(fd)
                    return try openPrivate(path, final: final, directory: directory, size: size)
                }
                Glibc.close(fd)
                throw SystemError("flock", path: path, errno: e)
            }
            var mine = stat(), named = stat()
            guard fstat(fd, &mine) == 0 else { let e = SystemError("fstat", path: path); Glibc.close(fd); throw e }
            let stillNamed = stat(path, &named) == 0 && named.st_ino == mine.st_ino && named.st_dev == mine.st_dev
            if IngestSession.size(of: final) == size {
                if stillNamed { unlink(path) }
                Glibc.close(fd)
                return nil
            }
            if !stillNamed { Glibc.close(fd); continue }
            guard (mine.st_mode & S_IFMT) == S_IFREG else {
                Glibc.close(fd); throw StoreError("\(path) is not a regular file")
            }
            return IngestSession(path: path, final: final, directory: directory, fd: fd)
        }
    }

    /// No locks on this filesystem: a file nobody else writes, seeded with a leftover
    /// `shared` download when this process wins the rename that takes it over.
    static func openPrivate(_ shared: String, final: String, directory: String, size: Int64) throws -> IngestSession? {
        if IngestSession.size(of: final) == size { return nil }
        let own = "\(final).\(getpid())-\(UInt32.random(in: 0...UInt32.max)).partial"
        _ = rename(shared, own)  // ENOENT: another puller took it (or there was none)
        let fd = open(own, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o644)
        guard fd >= 0 else { throw SystemError("open", path: own) }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
            Glibc.close(fd); unlink(own)
            throw StoreError("\(shared) is not a regular file")
        }
        return IngestSession(path: own, final: final, directory: directory, fd: fd, parkAs: shared)
    }

    /// One line for a full disk or quota: what was dropped, and what else holds space here.
    public func noSpaceMessage(blob: String, size: Int64) -> String {
        var held: Int64 = 0
        for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] where BlobIngest.isPartial(name) {
            held += IngestSession.size(of: "\(directory)/\(name)") ?? 0
        }
        var line = "no space left on device in \(directory) while downloading \(blob) (\(size) bytes); its partial download was removed"
        if held > 0 { line += "; other interrupted downloads hold \(held) bytes there: 'udocker rmi --prune' removes them" }
        return line
    }

    public func currentSize() throws -> Int64 {
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw SystemError("fstat", path: path) }
        return Int64(st.st_size)
    }

    public func truncate() throws {
        guard ftruncate(fd, 0) == 0 else { throw SystemError("truncate", path: path) }
    }

    public func write(_ buf: UnsafeRawBufferPointer, at offset: Int64) throws {
        var done = 0
        while done < buf.count {
            let n = pwrite(fd, buf.baseAddress! + done, buf.count - done, off_t(offset) + off_t(done))
            if n < 0 {
                if errno == EINTR { continue }
                throw SystemError("write", path: path)
            }
            done += n
        }
        let end = offset + Int64(buf.count)
        if end < flushedUpTo { flushedUpTo = 0 }  // restarted from an earlier offset
        if end - flushedUpTo >= IngestSession.writebackStep {
            Writeback.start(fd, offset: flushedUpTo, length: end - flushedUpTo)
            flushedUpTo = end
        }
    }

    public func readPrefix(_ length: Int64, _ body: (UnsafeRawBufferPointer) -> Void) throws {
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var pos: Int64 = 0
        while pos < length {
            let want = Int(min(Int64(buffer.count), length - pos))
            let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress!, want, off_t(pos)) }
            if n < 0 { if errno == EINTR { continue }; throw SystemError("read", path: path) }
            if n == 0 { throw StoreError("\(path) shrank while reading") }
            buffer.withUnsafeBytes { body(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            pos += Int64(n)
        }
    }

    /// Checks the size on disk, fsyncs, and renames to the final name — never over a blob another
    /// process published first (a final file of the wrong size is bad and is replaced), then
    /// fsyncs the directory. The lock, if any, is still held.
    public func commit(size: Int64) throws {
        let onDisk = try currentSize()
        guard onDisk == size else {
            discard()
            throw StoreError("\(path) changed size while downloading (\(onDisk) of \(size) bytes): another process wrote it; pull again")
        }
        guard fsync(fd) == 0 else { throw SystemError("fsync", path: path) }
        if let existing = IngestSession.size(of: final), existing != size { unlink(final) }
        try Publish.renameNoReplace(path, to: final)
        finished = true
        let dfd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 { _ = fsync(dfd); Glibc.close(dfd) }
    }

    public func discard() {
        if parkAs == nil { _ = ftruncate(fd, 0) }
        unlink(path)
        finished = true
    }

    /// Closes the file; an unfinished private download is parked under the shared name for a
    /// later resume, unless another one is parked there already.
    public func close() {
        guard fd >= 0 else { return }
        if let parkAs, !finished {
            if ((try? currentSize()) ?? 0) > 0 { _ = try? Publish.renameNoReplace(path, to: parkAs) } else { unlink(path) }
        }
        Glibc.close(fd); fd = -1
    }

    deinit { close() }
}
