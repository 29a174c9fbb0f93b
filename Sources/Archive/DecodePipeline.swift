import OCI
#if canImport(Glibc)
import Glibc
#endif

/// Decompression (and optionally the DiffID hash) on a second thread: a producer thread reads the
/// layer, inflates it (and hashes the uncompressed stream) into fixed-size chunks that go through a small
/// bounded queue (`depth` chunks, so memory stays constant) to the thread that parses the tar and
/// writes files.
///
/// The consumer sees exactly the byte sequence `Decompressor` would have given it, followed by the
/// producer's error (if any) at the same position, so errors are the same as single-threaded.
/// When the consumer stops early (`finish()`), the producer is told to stop, woken if it waits on a
/// full queue, and joined: it stops after at most the chunk it is decoding.
///
/// Only used on regular files: a read() that never returns (a stalled pipe) would make `finish()`
/// wait for it.
final class DecodePipeline: @unchecked Sendable {
    /// What happened on the producer side (for tests).
    struct Report: Equatable {
        enum End: Equatable { case endOfStream, error, cancelled, notStarted }
        var end: End = .notStarted
        /// The producer waited at least once for the consumer to free a chunk.
        var blockedOnFullQueue = false
        var chunksProduced = 0
        var joined = false
        /// CPU time of the producer thread, in seconds.
        var producerCPU = 0.0
    }

    private let decoder: Decompressor
    private let chunkSize: Int
    private let lock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let notFull = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private let notEmpty = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var allBuffers: [UnsafeMutableRawPointer] = []

    // Shared state, under `lock`.
    private var free: [UnsafeMutableRawPointer] = []
    private var full: [(UnsafeMutableRawPointer, Int)] = []
    private var fullHead = 0
    private var producerDone = false
    private var producerError: (any Error)?
    private var cancelled = false
    private var report = Report()

    /// The producer hashes what it decodes (else the consumer does, see `HashedBuffer`).
    let hashes: Bool
    // Producer only (read by the consumer after the producer is joined).
    private var hasher = DigestHasher()

    // Consumer only.
    private var current: UnsafeMutableRawPointer?
    private var currentOffset = 0
    private var currentCount = 0
    private var consumerFinished = false
    private var thread: pthread_t?

    var compression: Compression { decoder.compression }

    /// Starts the producer. Returns nil when no thread can be created (the caller then runs
    /// single-threaded with the same decoder).
    static func start(decoder: Decompressor, chunkSize: Int, depth: Int, hashing: Bool = true) -> DecodePipeline? {
        let p = DecodePipeline(decoder: decoder, chunkSize: chunkSize, depth: depth, hashing: hashing)
        guard let tid = PThread.start({ p.produce() }) else { return nil }
        p.thread = tid
        return p
    }

    private init(decoder: Decompressor, chunkSize: Int, depth: Int, hashing: Bool) {
        self.decoder = decoder
        hashes = hashing
        self.chunkSize = max(chunkSize, 4096)
        pthread_mutex_init(lock, nil)
        pthread_cond_init(notFull, nil)
        pthread_cond_init(notEmpty, nil)
        for _ in 0..<max(depth, 1) {
            allBuffers.append(UnsafeMutableRawPointer.allocate(byteCount: self.chunkSize, alignment: 64))
        }
        free = allBuffers
    }

    deinit {
        // Owners call finish(); should the last reference go away on the producer thread itself,
        // it cannot join itself.
        if let t = thread, pthread_equal(t, pthread_self()) != 0 {
            pthread_detach(t)
            thread = nil
        }
        finish()
        for b in allBuffers { b.deallocate() }
        pthread_cond_destroy(notEmpty)
        pthread_cond_destroy(notFull)
        pthread_mutex_destroy(lock)
        notEmpty.deallocate()
        notFull.deallocate()
        lock.deallocate()
    }

    // MARK: - producer thread

    private func produce() {
        var end = Report.End.endOfStream
        while true {
            pthread_mutex_lock(lock)
            if free.isEmpty && !cancelled {
                report.blockedOnFullQueue = true
                repeat { pthread_cond_wait(notFull, lock) } while free.isEmpty && !cancelled
            }
            if cancelled {
                pthread_mutex_unlock(lock)
                end = .cancelled
                break
            }
            let buf = free.removeLast()
            pthread_mutex_unlock(lock)

            var n = 0
            var error: (any Error)?
            var eof = false
            do {
                while n < chunkSize {
                    let m = try decoder.read(into: buf + n, count: chunkSize - n)
                    if m == 0 { eof = true; break }
                    n += m
                }
            } catch let e {
                error = e
            }
            if n > 0 && hashes { hasher.update(UnsafeRawBufferPointer(start: buf, count: n)) }

            pthread_mutex_lock(lock)
            if n > 0 { full.append((buf, n)); report.chunksProduced += 1 } else { free.append(buf) }
            if error != nil || eof {
                producerDone = true
                producerError = error
                end = error != nil ? .error : .endOfStream
                report.end = end
                report.producerCPU = DecodePipeline.threadCPU()
            }
            pthread_cond_signal(notEmpty)
            pthread_mutex_unlock(lock)
            if error != nil || eof { return }
        }
        pthread_mutex_lock(lock)
        producerDone = true
        report.end = end
        report.producerCPU = DecodePipeline.threadCPU()
        pthread_cond_signal(notEmpty)
        pthread_mutex_unlock(lock)
    }

    private static func threadCPU() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
    }

    // MARK: - consumer side

    /// Same contract as `Decompressor.read`: up to `count` bytes, 0 at the end of the stream, and
    /// the producer's error once the bytes before it are consumed.
    func read(into out: UnsafeMutableRawPointer, count: Int) throws -> Int {
        if count == 0 { return 0 }
        if currentOffset == currentCount {
            try nextChunk()
            if current == nil { return 0 }
        }
        let n = min(count, currentCount - currentOffset)
        out.copyMemory(from: current! + currentOffset, byteCount: n)
        currentOffset += n
        return n
    }

    private func nextChunk() throws {
        pthread_mutex_lock(lock)
        defer { pthread_mutex_unlock(lock) }
        if let c = current {
            free.append(c)
            current = nil
            currentOffset = 0
            currentCount = 0
            pthread_cond_signal(notFull)
        }
        while fullHead == full.count && !producerDone { pthread_cond_wait(notEmpty, lock) }
        if fullHead < full.count {
            let (b, n) = full[fullHead]
            fullHead += 1
            if fullHead == full.count { full.removeAll(keepingCapacity: true); fullHead = 0 }
            current = b
            currentCount = n
            return
        }
        consumerFinished = true
        if let e = producerError { throw e }
    }

    /// The sha256 of everything the producer decoded (when it `hashes`); valid once `read` has
    /// returned 0.
    func digest() -> Digest {
        finish()
        return hasher.finalize()
    }

    /// Stops the producer (if it is still running) and joins it. Idempotent.
    func finish() {
        guard let t = thread else { return }
        thread = nil
        pthread_mutex_lock(lock)
        cancelled = true
        pthread_cond_signal(notFull)
        pthread_mutex_unlock(lock)
        pthread_join(t, nil)
        report.joined = true
    }

    /// The producer's report so far (for tests; does not wait).
    func peekReport() -> Report {
        pthread_mutex_lock(lock)
        defer { pthread_mutex_unlock(lock) }
        return report
    }

    /// The producer's report (joins it first).
    func finalReport() -> Report {
        finish()
        return report
    }
}
