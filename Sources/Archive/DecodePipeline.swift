import OCI
import UDockerSystem
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
    private let lock = ConditionLock(conditions: 2)
    private let notFull = ConditionLock.Condition(0)
    private let notEmpty = ConditionLock.Condition(1)
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
    private var thread: WorkerThread?

    var compression: Compression { decoder.compression }

    /// Starts the producer. Returns nil when no thread can be created (the caller then runs
    /// single-threaded with the same decoder).
    static func start(decoder: Decompressor, chunkSize: Int, depth: Int, hashing: Bool = true) -> DecodePipeline? {
        let p = DecodePipeline(decoder: decoder, chunkSize: chunkSize, depth: depth, hashing: hashing)
        guard let tid = WorkerThread.start({ p.produce() }) else { return nil }
        p.thread = tid
        return p
    }

    private init(decoder: Decompressor, chunkSize: Int, depth: Int, hashing: Bool) {
        self.decoder = decoder
        hashes = hashing
        self.chunkSize = max(chunkSize, 4096)
        for _ in 0..<max(depth, 1) {
            allBuffers.append(UnsafeMutableRawPointer.allocate(byteCount: self.chunkSize, alignment: 64))
        }
        free = allBuffers
    }

    deinit {
        // Owners call finish(); should the last reference go away on the producer thread itself,
        // it cannot join itself.
        if let t = thread, t.isCurrent {
            t.detach()
            thread = nil
        }
        finish()
        for b in allBuffers { b.deallocate() }
    }

    // MARK: - producer thread

    private func produce() {
        var end = Report.End.endOfStream
        while true {
            lock.lock()
            if lock.wait(on: notFull, while: { free.isEmpty && !cancelled }) { report.blockedOnFullQueue = true }
            if cancelled {
                lock.unlock()
                end = .cancelled
                break
            }
            let buf = free.removeLast()
            lock.unlock()

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

            lock.lock()
            if n > 0 { full.append((buf, n)); report.chunksProduced += 1 } else { free.append(buf) }
            if error != nil || eof {
                producerDone = true
                producerError = error
                end = error != nil ? .error : .endOfStream
                report.end = end
                report.producerCPU = DecodePipeline.threadCPU()
            }
            lock.signal(notEmpty)
            lock.unlock()
            if error != nil || eof { return }
        }
        lock.lock()
        producerDone = true
        report.end = end
        report.producerCPU = DecodePipeline.threadCPU()
        lock.signal(notEmpty)
        lock.unlock()
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
        lock.lock()
        defer { lock.unlock() }
        if let c = current {
            free.append(c)
            current = nil
            currentOffset = 0
            currentCount = 0
            lock.signal(notFull)
        }
        lock.wait(on: notEmpty, while: { fullHead == full.count && !producerDone })
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
        lock.lock()
        cancelled = true
        lock.signal(notFull)
        lock.unlock()
        t.join()
        report.joined = true
    }

    /// The producer's report so far (for tests; does not wait).
    func peekReport() -> Report {
        lock.lock()
        defer { lock.unlock() }
        return report
    }

    /// The producer's report (joins it first).
    func finalReport() -> Report {
        finish()
        return report
    }
}
