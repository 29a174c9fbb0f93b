import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import OCI
import System
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

extension RegistryClient {
    /// Downloads each blob not already present into `directory` as `<algo>:<hex>` (udocker's
    /// `layers/` naming), `options.parallelism` at a time.
    ///
    /// Each blob streams into `<name>.partial`, held under an exclusive `flock` so that concurrent
    /// processes never write the same file; the bytes are hashed as they arrive, at most
    /// `descriptor.size` bytes are accepted, and the file is renamed into place only when size and
    /// digest match. A final file of the right size is not fetched again. A `.partial` left by an
    /// interrupted run, or a connection lost midway, resumes with `Range`; if the server ignores
    /// the range (200) or answers with a wrong `Content-Range`, the download restarts from 0.
    /// A mismatch after a resumed download restarts once from 0; otherwise the `.partial` is
    /// deleted and the error thrown. Foreign-layer `urls` are never fetched: the registry is asked.
    public func fetchBlobs(_ ref: ImageReference, _ blobs: [Descriptor], into directory: String,
                           progress: (@Sendable (ProgressEvent) -> Void)?) async throws {
        var seen = Set<Digest>()
        let unique = blobs.filter { seen.insert($0.digest).inserted }
        guard !unique.isEmpty else { return }
        for d in unique where d.size < 0 {
            throw RegistryError.invalidManifest("negative size for \(d.digest)")
        }
        let endpoint = try await endpoint(for: ref)
        let width = options.parallelism
        try await withThrowingTaskGroup(of: Void.self) { group in
            var pending = unique.makeIterator()
            for _ in 0..<width {
                guard let d = pending.next() else { break }
                group.addTask { try await self.fetchBlob(endpoint, d, directory: directory, progress: progress) }
            }
            while try await group.next() != nil {
                if let d = pending.next() {
                    group.addTask { try await self.fetchBlob(endpoint, d, directory: directory, progress: progress) }
                }
            }
        }
    }

    static func shortName(_ d: Digest) -> String { "\(d.algorithm):\(d.hex.prefix(12))" }

    func fetchBlob(_ endpoint: Endpoint, _ d: Descriptor, directory: String,
                   progress: (@Sendable (ProgressEvent) -> Void)?) async throws {
        let name = RegistryClient.shortName(d.digest)
        let final = "\(directory)/\(d.digest.fileName)"
        let partialPath = final + ".partial"
        if BlobFile.size(of: final) == d.size {
            progress?(.blobPresent(blob: name, bytes: d.size))
            return
        }
        guard let file = try await BlobFile.openLocked(partialPath, final: final, size: d.size, onWait: {
            progress?(.blobWaiting(blob: name))
        }) else {
            progress?(.blobPresent(blob: name, bytes: d.size))
            return
        }
        defer { file.close() }
        do {
            try await download(endpoint, d, file: file, final: final, directory: directory, name: name, progress: progress)
        } catch {
            // Nothing worth resuming: don't leave an empty .partial behind.
            if (try? file.currentSize()) == 0 { file.discard() }
            throw error
        }
    }

    private func download(_ endpoint: Endpoint, _ d: Descriptor, file: BlobFile, final: String, directory: String,
                          name: String, progress: (@Sendable (ProgressEvent) -> Void)?) async throws {
        var offset = try file.currentSize()
        if offset > d.size { try file.truncate(); offset = 0 }
        var hasher = BlobHasher(algorithm: d.digest.algorithm)
        if offset > 0 { try file.hashPrefix(offset, into: &hasher) }
        var resumed = offset > 0
        var restartedAfterMismatch = false
        var failures = 0
        var rangeRestarts = 0
        var totalConnections = 0
        let path = "/v2/\(endpoint.repository)/blobs/\(d.digest)"
        progress?(.blobStarted(blob: name, bytes: d.size, resumedAt: offset))

        func restartFromZero() throws {
            try file.truncate(); offset = 0
            hasher = BlobHasher(algorithm: d.digest.algorithm); resumed = false
        }

        while true {
            try Task.checkCancellation()
            if offset == d.size {
                let got = hasher.finalize()
                if got == d.digest {
                    try file.publish(to: final, directory: directory, size: d.size)
                    progress?(.blobVerified(blob: name, bytes: d.size))
                    return
                }
                if resumed && !restartedAfterMismatch {
                    logger.warning("\(name): digest mismatch after a resumed download; restarting from 0")
                    restartedAfterMismatch = true
                    try restartFromZero()
                    continue
                }
                file.discard()
                throw RegistryError.digestMismatch(expected: d.digest, actual: got)
            }
            totalConnections += 1
            if totalConnections > options.maxAttempts * 4 {
                throw RegistryError.unreachable(host: endpoint.host, reason: "too many interrupted connections for \(d.digest)")
            }
            var headers: HTTPHeaders = ["Accept": "*/*"]
            if offset > 0 { headers.add(name: "Range", value: "bytes=\(offset)-") }
            let (response, origin) = try await registryGET(endpoint, path: path, headers: headers, timeout: .hours(24))
            let code = Int(response.status.code)
            switch code {
            case 200:
                if offset > 0 {
                    logger.info("\(name): \(origin.hostPort) ignored the Range request; restarting from 0")
                    try restartFromZero()
                }
                if let len = response.headers.first(name: "Content-Length").flatMap(Int64.init), len > d.size {
                    await RegistryClient.discard(response)
                    file.discard()
                    throw RegistryError.sizeMismatch(digest: d.digest.description, expected: d.size,
                                                     detail: "the server announces \(len)")
                }
            case 206:
                let cr = ContentRange(response.headers.first(name: "Content-Range"))
                guard offset > 0, let cr, cr.start == offset, cr.end == d.size - 1, cr.total == nil || cr.total == d.size else {
                    await RegistryClient.discard(response)
                    rangeRestarts += 1
                    guard rangeRestarts <= 2 else {
                        throw RegistryError.invalidResponse("\(origin.hostPort) keeps answering \(d.digest) with a wrong Content-Range")
                    }
                    logger.info("\(name): unexpected Content-Range from \(origin.hostPort); restarting from 0")
                    try restartFromZero()
                    continue
                }
            case 416:
                await RegistryClient.discard(response)
                rangeRestarts += 1
                guard rangeRestarts <= 2 else {
                    throw RegistryError.invalidResponse("\(origin.hostPort) refuses ranges for \(d.digest)")
                }
                try restartFromZero()
                continue
            case 404:
                await RegistryClient.discard(response)
                throw RegistryError.blobNotFound(digest: d.digest.description, repository: endpoint.repository)
            case 401, 403:
                await RegistryClient.discard(response)
                throw RegistryError.authRefused(host: origin.hostPort, status: code, detail: "blob \(d.digest)")
            default:
                await RegistryClient.discard(response)
                throw RegistryError.unexpectedStatus(host: origin.hostPort, status: code, what: "blob \(d.digest)")
            }

            let before = offset
            do {
                var lastReport = offset
                for try await chunk in response.body {
                    let n = Int64(chunk.readableBytes)
                    guard offset + n <= d.size else {
                        file.discard()
                        throw RegistryError.sizeMismatch(digest: d.digest.description, expected: d.size,
                                                         detail: "the server sent more")
                    }
                    try chunk.withUnsafeReadableBytes { buf in
                        try file.write(buf, at: offset)
                        hasher.update(buf)
                    }
                    offset += n
                    if offset - lastReport >= 256 << 10 || offset == d.size {
                        lastReport = offset
                        progress?(.blobBytes(blob: name, done: offset, total: d.size))
                    }
                }
            } catch let e as RegistryError {
                throw e
            } catch let e as SystemError {
                if e.errno == ENOSPC || e.errno == EDQUOT {
                    file.discard()
                    throw RegistryError.io(BlobFile.noSpaceMessage(directory: directory, blob: name, size: d.size))
                }
                throw RegistryError.io("\(name): \(e.description)")
            } catch {
                if error is CancellationError || Task.isCancelled { throw CancellationError() }
                if offset > before { failures = 0 }
                failures += 1
                guard failures < options.maxAttempts else {
                    throw RegistryError.unreachable(host: origin.hostPort,
                                                    reason: "download of \(d.digest) interrupted: \(RegistryClient.describe(error))")
                }
                resumed = resumed || offset > 0
                let delay = backoff(failures)
                logger.info("\(name): \(RegistryClient.describe(error)) at \(offset)/\(d.size); resuming in \(String(format: "%.1f", delay))s")
                progress?(.blobResuming(blob: name, at: offset, total: d.size))
                try await Task.sleep(nanoseconds: UInt64(delay * 1e9))
                continue
            }
            if offset < d.size {
                file.discard()
                throw RegistryError.sizeMismatch(digest: d.digest.description, expected: d.size,
                                                 detail: "the server sent only \(offset)")
            }
        }
    }
}

/// A download file: normally `<final>.partial`, held under an exclusive `flock` so that
/// concurrent pullers never write the same file and an interrupted run can resume it.
///
/// Where the filesystem refuses locks (ENOLCK/ENOSYS/EOPNOTSUPP: Lustre `noflock`, some NFS and
/// FUSE mounts) the bytes go to a file of this process's own, `<final>.<pid>-<random>.partial`,
/// which no other puller ever opens: a leftover `<final>.partial` is taken over by renaming it
/// to that name (one process wins the rename), and an interrupted download is parked back under
/// `<final>.partial` only if that name is free. Publication never replaces a verified blob that
/// another process published first (`renameat2(RENAME_NOREPLACE)`).
final class BlobFile {
    let path: String
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

    private init(path: String, fd: Int32, parkAs: String? = nil) { self.path = path; self.fd = fd; self.parkAs = parkAs }

    static func size(of path: String) -> Int64? {
        var st = stat()
        guard stat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return nil }
        return Int64(st.st_size)
    }

    /// Opens and locks `path`. Returns nil when, once the lock is ours, `final` already exists
    /// with the expected size (another process finished it). Re-opens if the file we locked was
    /// renamed or removed by the previous holder. Without locks, returns a private file instead.
    static func openLocked(_ path: String, final: String, size: Int64,
                           onWait: () -> Void) async throws -> BlobFile? {
        var announced = false
        while true {
            try Task.checkCancellation()
            let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o644)
            guard fd >= 0 else { throw RegistryError.io(SystemError("open", path: path).description) }
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
                    return try openPrivate(path, final: final, size: size)
                }
                Glibc.close(fd)
                throw RegistryError.io(SystemError("flock", path: path, errno: e).description)
            }
            var mine = stat(), named = stat()
            guard fstat(fd, &mine) == 0 else { Glibc.close(fd); throw RegistryError.io(SystemError("fstat", path: path).description) }
            let stillNamed = stat(path, &named) == 0 && named.st_ino == mine.st_ino && named.st_dev == mine.st_dev
            if BlobFile.size(of: final) == size {
                if stillNamed { unlink(path) }
                Glibc.close(fd)
                return nil
            }
            if !stillNamed { Glibc.close(fd); continue }
            guard (mine.st_mode & S_IFMT) == S_IFREG else {
                Glibc.close(fd); throw RegistryError.io("\(path) is not a regular file")
            }
            return BlobFile(path: path, fd: fd)
        }
    }

    /// No locks on this filesystem: a file nobody else writes, seeded with a leftover
    /// `shared` download when this process wins the rename that takes it over.
    static func openPrivate(_ shared: String, final: String, size: Int64) throws -> BlobFile? {
        if BlobFile.size(of: final) == size { return nil }
        let own = "\(final).\(getpid())-\(UInt32.random(in: 0...UInt32.max)).partial"
        _ = rename(shared, own)   // ENOENT: another puller took it (or there was none)
        let fd = open(own, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o644)
        guard fd >= 0 else { throw RegistryError.io(SystemError("open", path: own).description) }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
            Glibc.close(fd); unlink(own)
            throw RegistryError.io("\(shared) is not a regular file")
        }
        return BlobFile(path: own, fd: fd, parkAs: shared)
    }

    /// One line for a full disk or quota: what was dropped, and what else holds space here.
    static func noSpaceMessage(directory: String, blob: String, size: Int64) -> String {
        var held: Int64 = 0
        for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] where name.hasSuffix(".partial") {
            held += BlobFile.size(of: "\(directory)/\(name)") ?? 0
        }
        var line = "no space left on device in \(directory) while downloading \(blob) (\(size) bytes); its partial download was removed"
        if held > 0 { line += "; other interrupted downloads hold \(held) bytes there: 'udocker rmi --prune' removes them" }
        return line
    }

    func currentSize() throws -> Int64 {
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw RegistryError.io(SystemError("fstat", path: path).description) }
        return Int64(st.st_size)
    }

    func truncate() throws {
        guard ftruncate(fd, 0) == 0 else { throw RegistryError.io(SystemError("truncate", path: path).description) }
    }

    func write(_ buf: UnsafeRawBufferPointer, at offset: Int64) throws {
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
        if end < flushedUpTo { flushedUpTo = 0 }   // restarted from an earlier offset
        if end - flushedUpTo >= BlobFile.writebackStep {
            Writeback.start(fd, offset: flushedUpTo, length: end - flushedUpTo)
            flushedUpTo = end
        }
    }

    /// Feeds the first `length` bytes already on disk to `hasher` (resuming).
    func hashPrefix(_ length: Int64, into hasher: inout BlobHasher) throws {
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var pos: Int64 = 0
        while pos < length {
            let want = Int(min(Int64(buffer.count), length - pos))
            let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress!, want, off_t(pos)) }
            if n < 0 { if errno == EINTR { continue }; throw RegistryError.io(SystemError("read", path: path).description) }
            if n == 0 { throw RegistryError.io("\(path) shrank while reading") }
            buffer.withUnsafeBytes { hasher.update(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            pos += Int64(n)
        }
    }

    /// Checks the size on disk, fsyncs, and renames to `final` — never over a blob another
    /// process published first (a `final` of the wrong size is bad and is replaced), then fsyncs
    /// the directory. The lock, if any, is still held.
    func publish(to final: String, directory: String, size: Int64) throws {
        let onDisk = try currentSize()
        guard onDisk == size else {
            discard()
            throw RegistryError.io("\(path) changed size while downloading (\(onDisk) of \(size) bytes): another process wrote it; pull again")
        }
        guard fsync(fd) == 0 else { throw RegistryError.io(SystemError("fsync", path: path).description) }
        if let existing = BlobFile.size(of: final), existing != size { unlink(final) }
        do { try Publish.renameNoReplace(path, to: final) } catch let e as SystemError {
            throw RegistryError.io(e.description)
        }
        finished = true
        let dfd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 { _ = fsync(dfd); Glibc.close(dfd) }
    }

    /// Removes the download file (its content is known bad, or there is nothing in it).
    func discard() {
        if parkAs == nil { _ = ftruncate(fd, 0) }
        unlink(path)
        finished = true
    }

    /// Closes the file; an unfinished private download is parked under the shared name for a
    /// later resume, unless another one is parked there already.
    func close() {
        guard fd >= 0 else { return }
        if let parkAs, !finished {
            if ((try? currentSize()) ?? 0) > 0 { _ = try? Publish.renameNoReplace(path, to: parkAs) } else { unlink(path) }
        }
        Glibc.close(fd); fd = -1
    }

    deinit { close() }
}
