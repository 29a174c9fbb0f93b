/// An execution engine as a plug-in: it declares what it can do (`capabilities`), prepares what
/// it needs before the common plan is made (its tool, a conversion, a mode-specific view of the
/// options), and turns the `ExecutionPlan` into a `Launch`. Everything else — nesting and
/// capability checks, planning, warnings, banner, spawn, error mapping, wait and clean-up — is
/// done once by `EngineRunner`. Adding an engine is one file plus one line in `EngineRegistry`.
public protocol ExecutionEngine: Sendable {
    /// What `prepare` hands to `launch` (the tool found, an overlay view, ...).
    associatedtype Prepared = Void
    /// The modes this engine runs.
    static var modes: [ExecutionMode] { get }
    /// What the engine can honour in `mode` and what it is like there: declared once, here, and
    /// read by the registry, the runner and the plan.
    static func capabilities(of mode: ExecutionMode) -> EngineCapabilities
    var mode: ExecutionMode { get }
    var environment: EngineEnvironment { get }
    /// Standard I/O of the command (inherited by default).
    var io: StandardIO { get }
    /// Before planning: find the tool, adjust `run` (options, sysdirs, warnings not to show), or
    /// hand the run over to another mode (`run.handOver`).
    func prepare(_ run: inout EngineRun) throws -> Prepared
    /// The plan rendered for this engine. Engine-specific warnings go to `run.messages` (one call
    /// per warning); files it creates are removed by `Launch.cleanup`.
    func launch(_ plan: ExecutionPlan, prepared: Prepared, run: EngineRun) throws -> Launch
}

extension ExecutionEngine {
    public var capabilities: EngineCapabilities { Self.capabilities(of: mode) }

    /// Runs a prepared container and returns the command's exit status (128+signal when it was
    /// killed). Failures before the command starts throw `EngineError`.
    public func run(_ container: ContainerInstance, options: RunOptions) throws -> Int32 {
        try EngineRunner(registry: .standard).run(self, container: container, options: options)
    }
}

extension ExecutionEngine where Prepared == Void {
    public func prepare(_ run: inout EngineRun) throws {}
}
