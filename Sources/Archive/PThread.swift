#if canImport(Glibc)
import Glibc
#endif

/// Plain pthreads for the extraction pipeline (synchronous code that must be joinable, unlike
/// Swift concurrency tasks).
enum PThread {
    /// Starts a thread running `body`, which keeps what it captures alive until it returns.
    /// Returns nil when no thread can be created.
    static func start(_ body: @escaping @Sendable () -> Void) -> pthread_t? {
        final class Start: @unchecked Sendable {
            let body: @Sendable () -> Void
            init(_ body: @escaping @Sendable () -> Void) { self.body = body }
        }
        let ctx = Unmanaged.passRetained(Start(body)).toOpaque()
        var tid = pthread_t()
        let rc = pthread_create(&tid, nil, { arg in
            Unmanaged<Start>.fromOpaque(arg!).takeRetainedValue().body()
            return nil
        }, ctx)
        guard rc == 0 else {
            Unmanaged<Start>.fromOpaque(ctx).release()
            return nil
        }
        return tid
    }
}
