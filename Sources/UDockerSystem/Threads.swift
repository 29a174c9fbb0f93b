#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

// The one threading toolkit of the synchronous code (extraction pipeline, writer pool, layer
// cache, clone): plain joinable pthreads and a mutex with condition variables. Swift concurrency
// does not fit there: the work blocks in read/write/openat for its whole life and must be joined
// (a task cannot be), and no concurrency runtime threads are started where none were.

/// A started thread that must be joined (or detached) exactly once.
public struct WorkerThread: Sendable {
    private let id: pthread_t

    /// Starts a thread running `body`, which keeps what it captures alive until it returns.
    /// Returns nil when no thread can be created (callers fall back to doing the work inline).
    ///
    /// `blockingSIGPIPE`: for a thread that writes into a pipe whose reader may stop early. The
    /// signal a write to a closed pipe raises is thread-directed; blocked, it stays pending on this
    /// thread (discarded when it exits) and the write fails with EPIPE, so the process-wide
    /// disposition of SIGPIPE is never changed.
    public static func start(blockingSIGPIPE: Bool = false, _ body: @escaping @Sendable () -> Void) -> WorkerThread? {
        final class Start: @unchecked Sendable {
            let body: @Sendable () -> Void
            let blockingSIGPIPE: Bool
            init(_ body: @escaping @Sendable () -> Void, _ blockingSIGPIPE: Bool) {
                self.body = body; self.blockingSIGPIPE = blockingSIGPIPE
            }
        }
        let ctx = Unmanaged.passRetained(Start(body, blockingSIGPIPE)).toOpaque()
        var tid = pthread_t()
        let rc = pthread_create(
            &tid, nil,
            { arg in
                let start = Unmanaged<Start>.fromOpaque(arg!).takeRetainedValue()
                if start.blockingSIGPIPE {
                    var set = sigset_t()
                    sigemptyset(&set)
                    sigaddset(&set, SIGPIPE)
                    pthread_sigmask(SIG_BLOCK, &set, nil)
                }
                start.body()
                return nil
            }, ctx)
        guard rc == 0 else {
            Unmanaged<Start>.fromOpaque(ctx).release()
            return nil
        }
        return WorkerThread(id: tid)
    }

    /// Waits for the thread to return.
    public func join() { pthread_join(id, nil) }

    /// Lets the thread end on its own (for a thread dropping the last reference to its owner).
    public func detach() { pthread_detach(id) }

    /// True when called on this thread (which cannot join itself).
    public var isCurrent: Bool { pthread_equal(id, pthread_self()) != 0 }
}

/// A mutex with condition variables, for state that threads wait on (a bounded queue: "not
/// full", "not empty", "idle"). `Synchronization.Mutex` cannot wait for a condition.
public final class ConditionLock: @unchecked Sendable {
    /// One of the lock's conditions (by index, `0..<conditions`).
    public struct Condition: Sendable {
        public let index: Int
        public init(_ index: Int) { self.index = index }
    }

    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let conditions: UnsafeMutablePointer<pthread_cond_t>
    private let count: Int

    public init(conditions: Int = 1) {
        count = max(conditions, 1)
        self.conditions = .allocate(capacity: count)
        pthread_mutex_init(mutex, nil)
        for i in 0..<count { pthread_cond_init(self.conditions + i, nil) }
    }

    deinit {
        for i in 0..<count { pthread_cond_destroy(conditions + i) }
        pthread_mutex_destroy(mutex)
        conditions.deallocate()
        mutex.deallocate()
    }

    public func lock() { pthread_mutex_lock(mutex) }
    public func unlock() { pthread_mutex_unlock(mutex) }

    public func withLock<R>(_ body: () throws -> R) rethrows -> R {
        lock()
        defer { unlock() }
        return try body()
    }

    /// Waits (the lock held) while `blocked()` is true. Returns whether it waited at all.
    @discardableResult
    public func wait(on c: Condition, while blocked: () -> Bool) -> Bool {
        guard blocked() else { return false }
        repeat { pthread_cond_wait(conditions + c.index, mutex) } while blocked()
        return true
    }

    /// Wakes one waiter of `c` (call with the lock held).
    public func signal(_ c: Condition) { pthread_cond_signal(conditions + c.index) }

    /// Wakes every waiter of `c` (call with the lock held).
    public func broadcast(_ c: Condition) { pthread_cond_broadcast(conditions + c.index) }
}

public enum Threads {
    /// Calls `body(i)` for every `i` in `0..<count`, in index order of start, on up to `width`
    /// threads (the calling thread is one of them; fewer when threads cannot be created). Once a
    /// call returns false, no further index is started; running calls finish. Returns when all
    /// calls have returned.
    public static func forEach(_ count: Int, width: Int, _ body: (Int) -> Bool) {
        let width = min(max(width, 1), count)
        guard width > 1 else {
            for i in 0..<count where !body(i) { return }
            return
        }
        final class Shared: @unchecked Sendable {
            let lock = ConditionLock()
            var next = 0
            let count: Int
            let body: (Int) -> Bool
            init(_ count: Int, _ body: @escaping (Int) -> Bool) { self.count = count; self.body = body }
            func run() {
                while true {
                    let i: Int = lock.withLock {
                        defer { next += 1 }; return next
                    }
                    guard i < count else { return }
                    if !body(i) { lock.withLock { next = count } }
                }
            }
        }
        withoutActuallyEscaping(body) { body in
            let shared = Shared(count, body)
            let threads = (1..<width).compactMap { _ in WorkerThread.start { shared.run() } }
            shared.run()
            for t in threads { t.join() }
        }
    }
}
