/// The two-node cluster (`ClusterTests`) adds and removes a bridge and veth pairs on the host at
/// every start and stop; an MPI job launched meanwhile on the host lists the interfaces (UCX,
/// Open MPI's btl/tcp) and fails when one vanishes under it: MPICH's UCX stopped every rank
/// with `init_worker No such device` once (make test, 8 December, F3 under Hydra, while the
/// cluster stopped). Host jobs hold the gate shared; the cluster's start and stop hold it alone.
actor HostNetworkGate {
    static let shared = HostNetworkGate()

    private var readers = 0
    private var writer = false
    private var waitingWriters = 0
    private var waiting: [CheckedContinuation<Void, Never>] = []

    private func acquireShared() async {
        while writer || waitingWriters > 0 { await withCheckedContinuation { waiting.append($0) } }
        readers += 1
    }

    private func acquireExclusive() async {
        waitingWriters += 1
        while writer || readers > 0 { await withCheckedContinuation { waiting.append($0) } }
        waitingWriters -= 1
        writer = true
    }

    private func release(exclusive: Bool) {
        if exclusive { writer = false } else { readers -= 1 }
        let woken = waiting
        waiting = []
        woken.forEach { $0.resume() }  // each checks again
    }

    /// Runs `body` while no one changes the host's interfaces (`exclusive`: while no one else runs).
    static func with<T: Sendable>(exclusive: Bool = false, _ body: () async throws -> T) async throws -> T {
        let gate = HostNetworkGate.shared
        if exclusive { await gate.acquireExclusive() } else { await gate.acquireShared() }
        do {
            let value = try await body()
            await gate.release(exclusive: exclusive)
            return value
        } catch {
            await gate.release(exclusive: exclusive)
            throw error
        }
    }
}
