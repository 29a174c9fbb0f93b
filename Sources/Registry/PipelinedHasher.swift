import NIOCore
import OCI
import UDockerSystem

/// A blob's digest computed on a thread of its own while the download goes on. In line, hashing
/// each chunk held the next read back (the body stream's back-pressure waits for the consumer):
/// SHA-256 was 55 % of a pull's CPU time and added its whole duration to the wall time. Chunks
/// are queued as they are (a `ByteBuffer` is shared, not copied), at most `limit` bytes ahead of
/// the hashing; past that the writer waits. Without a thread it hashes in line. The owner calls
/// `finalize()` or `cancel()` (the thread holds the hasher until then).
final class PipelinedHasher: @unchecked Sendable {
    static let limit = 16 << 20

    private let lock = ConditionLock(conditions: 2)
    private static let work = ConditionLock.Condition(0)
    private static let room = ConditionLock.Condition(1)
    private var queue: [ByteBuffer] = []
    private var queuedBytes = 0
    private var closed = false
    private var abandoned = false
    /// Touched by the worker only, until it is joined (or by the caller when there is no worker).
    private var hasher: BlobHasher
    private var worker: WorkerThread?

    /// Continues `hasher` (which may already hold a resumed prefix).
    init(_ hasher: BlobHasher) {
        self.hasher = hasher
        worker = WorkerThread.start { [self] in run() }
    }

    /// Stops the thread, dropping what is queued (a download that ends without a digest).
    func cancel() { stop(abandon: true) }

    func update(_ chunk: ByteBuffer) {
        guard worker != nil else {
            chunk.withUnsafeReadableBytes { hasher.update($0) }
            return
        }
        lock.lock()
        lock.wait(on: Self.room) { queuedBytes >= Self.limit }
        queue.append(chunk)
        queuedBytes += chunk.readableBytes
        lock.signal(Self.work)
        lock.unlock()
    }

    /// The digest of everything given (waits for the queue to be hashed).
    func finalize() -> OCI.Digest {
        stop(abandon: false)
        return hasher.finalize()
    }

    private func stop(abandon: Bool) {
        guard let w = worker else { return }
        lock.lock()
        closed = true
        abandoned = abandon
        lock.signal(Self.work)
        lock.unlock()
        w.join()
        worker = nil
    }

    private func run() {
        while true {
            lock.lock()
            lock.wait(on: Self.work) { queue.isEmpty && !closed }
            if abandoned || (queue.isEmpty && closed) {
                lock.unlock()
                return
            }
            let batch = queue
            queue.removeAll(keepingCapacity: true)
            lock.unlock()
            var bytes = 0
            for chunk in batch {
                chunk.withUnsafeReadableBytes { hasher.update($0) }
                bytes += chunk.readableBytes
            }
            lock.lock()
            queuedBytes -= bytes
            lock.broadcast(Self.room)
            lock.unlock()
        }
    }
}
