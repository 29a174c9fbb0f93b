import Synchronization
import UDockerSystem

/// When a download that has started is given up: no byte for `stallTimeout` seconds, or fewer
/// than `minimumRate` bytes a second over the last `rateWindow` seconds (curl's
/// `--speed-limit`/`--speed-time`). 0 turns a limit off. A registry that stalls or drips then ends
/// the pull with one error instead of holding a batch job for hours; the partial blob is kept for
/// the next pull to resume.
public struct TransferLimits: Sendable, Equatable {
    public var stallTimeout: Double
    public var minimumRate: Int64
    public var rateWindow: Double

    public init(stallTimeout: Double = 30, minimumRate: Int64 = 1024, rateWindow: Double = 60) {
        self.stallTimeout = stallTimeout; self.minimumRate = minimumRate; self.rateWindow = rateWindow
    }

    public static let none = TransferLimits(stallTimeout: 0, minimumRate: 0, rateWindow: 0)

    /// `5` for whole seconds, `2.5` otherwise.
    static func seconds(_ v: Double) -> String { v == v.rounded() && abs(v) < 1e15 ? String(Int64(v)) : Format.fixed(v) }
    var isOff: Bool { stallTimeout <= 0 && (minimumRate <= 0 || rateWindow <= 0) }
}

/// The bytes of the body being streamed, shared between the download and its watchdog. Only a
/// body in progress is measured: waiting for another puller's lock, backoff sleeps and the wait
/// for response headers (the HTTP client's read timeout) are not.
final class TransferMeter: Sendable {
    private struct State {
        var streaming = false
        var bytes: Int64 = 0
        /// Where the download is in its blob (resumed prefix included).
        var position: Int64 = 0
        var lastByte = ContinuousClock.now
        /// Bumped at each `begin`: the watchdog's history belongs to one body.
        var generation = 0
    }
    private let state = Mutex(State())

    func begin(at offset: Int64) {
        state.withLock { s in
            s.streaming = true; s.lastByte = .now; s.generation += 1; s.position = offset
        }
    }

    func add(_ n: Int) {
        state.withLock { s in
            s.bytes += Int64(n); s.position += Int64(n); s.lastByte = .now
        }
    }

    var position: Int64 { state.withLock { $0.position } }

    func end() { state.withLock { $0.streaming = false } }

    fileprivate var snapshot: (streaming: Bool, bytes: Int64, lastByte: ContinuousClock.Instant, generation: Int) {
        state.withLock { ($0.streaming, $0.bytes, $0.lastByte, $0.generation) }
    }
}

/// Why a watched transfer was given up.
struct TransferTooSlow: Error {
    var reason: String
}

extension TransferLimits {
    /// Runs `body` with a meter it feeds; throws `TransferTooSlow` (and cancels `body`) when the
    /// body it is streaming breaks a limit. `body`'s own errors and result pass through.
    func watch<T: Sendable>(_ meter: TransferMeter, _ body: @escaping @Sendable (TransferMeter) async throws -> T) async throws -> T {
        guard !isOff else { return try await body(meter) }
        let limits = self
        return try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { try await body(meter) }
            group.addTask {
                try await limits.watchdog(meter)
                return nil
            }
            while let next = try await group.next() {
                if let result = next {
                    group.cancelAll()
                    return result
                }
            }
            throw CancellationError()
        }
    }

    /// Samples the meter four times a second until cancelled or a limit is broken.
    private func watchdog(_ meter: TransferMeter) async throws {
        var samples: [(time: ContinuousClock.Instant, bytes: Int64)] = []
        var generation = -1
        let window = Duration.milliseconds(Int64(rateWindow * 1000))
        while true {
            try await Task.sleep(for: .milliseconds(250))
            let now = ContinuousClock.now
            let s = meter.snapshot
            guard s.streaming else { samples.removeAll(); continue }
            if s.generation != generation { samples.removeAll(); generation = s.generation }
            if stallTimeout > 0, now - s.lastByte >= .milliseconds(Int64(stallTimeout * 1000)) {
                throw TransferTooSlow(reason: "no data for \(Self.seconds(stallTimeout)) s (transfer_stall_timeout)")
            }
            guard minimumRate > 0, rateWindow > 0 else { continue }
            samples.append((now, s.bytes))
            // The oldest sample at least one window old is the reference; older ones are dropped.
            while samples.count > 1, now - samples[1].time >= window { samples.removeFirst() }
            guard let first = samples.first, now - first.time >= window else { continue }
            let seconds = Double((now - first.time).components.seconds) + Double((now - first.time).components.attoseconds) / 1e18
            let rate = Double(s.bytes - first.bytes) / max(seconds, 0.001)
            if rate < Double(minimumRate) {
                throw TransferTooSlow(
                    reason:
                        "less than \(minimumRate) bytes/s for \(Self.seconds(rateWindow)) s (\(Int64(rate)) bytes/s; transfer_min_rate, transfer_rate_window)"
                )
            }
        }
    }
}

extension RegistryClient {
    /// Runs `body`, cancelled after `seconds` (0: no limit) and then failing with
    /// `RegistryError.deadlineExceeded`: a pull's overall bound (`pull_timeout`). Cancellation
    /// keeps every partial download for the next pull.
    public static func withTimeLimit<T: Sendable>(
        _ seconds: Double, _ body: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        guard seconds > 0 else { return try await body() }
        return try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { try await body() }
            group.addTask {
                try await Task.sleep(for: .milliseconds(Int64(seconds * 1000)))
                throw RegistryError.deadlineExceeded(seconds: seconds)
            }
            while let next = try await group.next() {
                if let result = next {
                    group.cancelAll()
                    return result
                }
            }
            throw CancellationError()
        }
    }
}
