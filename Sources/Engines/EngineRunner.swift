import ContainerModel
import FoundationEssentials
import UDockerSystem
#if canImport(Glibc)
import Glibc
#endif

/// One run as an engine's `prepare` may shape it before the plan is made.
public struct EngineRun {
    /// The container as it is planned (N1 plans an overlay container against its merged view).
    public var container: ContainerInstance
    /// The container as the command gave it.
    public let requestedContainer: ContainerInstance
    /// The options as the user gave them (the banner reads these).
    public let requestedOptions: RunOptions
    /// The options the plan is made from (Fakechroot replaces `--user` with the host user).
    public var options: RunOptions
    /// The environment the plan is made from (the R modes and S1 bind fewer sysdirs).
    public var environment: EngineEnvironment
    /// Plan warnings this engine makes moot (Fakechroot: the host user it chose itself).
    public var hiddenWarnings: Set<PlanWarning.Kind> = []
    /// Run in this mode instead (a Fakechroot conversion that ended in another mode).
    public var handOver: ExecutionMode?
    /// Undone when the run ends, last first (an overlay view is closed).
    var cleanup: [() -> Void] = []
    var messages: Messages
}

/// What an engine starts: one child, with this argv, environment and working directory (N1: in
/// new namespaces). `finish` turns the child's status into the command's (a detached runtime
/// exits 0 and the command is waited for then); `cleanup` runs when the run ends, last first.
public struct Launch {
    var path: String
    var arguments: [String]
    var environment: [String]
    var cwd: String?
    var namespace: ChildLaunch.Namespace?
    /// N1, a rank of a joined job step: the namespaces it enters instead (`JobJoin`).
    var join: (user: Int32, mount: Int32)?
    /// Shown at verbose level before the start (one line each); built only when shown (interpolating
    /// arrays reflects on each element type, a conformance scan per type on every run).
    var summary: () -> [String]
    /// The engine's words for a failed start; the default names the mode and the step.
    var startError: ((ChildLaunch.Failure) -> EngineError)?
    var finish: ((Int32) throws -> Int32)?
    var cleanup: [() -> Void] = []

    init(
        path: String, arguments: [String], environment: [String], cwd: String? = nil,
        namespace: ChildLaunch.Namespace? = nil, summary: @escaping @autoclosure () -> [String]
    ) {
        self.path = path; self.arguments = arguments; self.environment = environment
        self.cwd = cwd; self.namespace = namespace; self.summary = summary
    }
}

/// The one sequence every engine shares: nesting and capability checks → prepare → plan
/// (capability refusals and warnings included) → engine launch → banner → spawn → error mapping
/// → wait → clean-up; and the automatic fallback to another engine.
public struct EngineRunner: Sendable {
    public var registry: EngineRegistry

    public init(registry: EngineRegistry = .standard) { self.registry = registry }

    /// Runs `container` with `engine`. `label` is the container as the user named it (messages).
    /// With `fallback` (a container with no mode of its own), when its engine cannot start here,
    /// the next engine of `EngineSelector.automaticOrder` that works runs it instead, recorded as
    /// its mode (`ContainerInstance.recordMode`; the engines that convert record it themselves).
    public func run<E: ExecutionEngine>(
        _ engine: E, container: ContainerInstance, options: RunOptions, label: String? = nil,
        fallback: Bool = false
    ) throws -> Int32 {
        do {
            return try runOnce(engine, container: container, options: options, label: label)
        } catch let error as EngineError where fallback && error.kind == .cannotStart && container.overlay == nil {
            let environment = engine.environment
            guard let problem = EngineSelector.problem(with: engine.mode, environment: environment) else { throw error }
            let next = EngineSelector.fallback(after: engine.mode, reason: problem, environment: environment)
            let why = next.skipped.joined(separator: "; ")
            guard let mode = next.mode else {
                throw EngineError(.cannotStart, "no engine works here (\(why)); see udocker doctor", exitStatus: 1)
            }
            let name = label ?? container.id
            Messages(verbosity: environment.debug ? 5 : environment.verbosity).warning(
                "\(why): running with \(mode.rawValue), recorded for this container "
                    + "(udocker setup --execmode=\(engine.mode.rawValue) \(name) to try \(engine.mode.rawValue) again)")
            if !registry.capabilities(of: mode).contains(.recordsOwnMode) { try container.recordMode?(mode) }
            let other = try registry.engine(for: mode, environment: environment, io: engine.io)
            return try runOnce(other, container: container, options: options, label: label)
        }
    }

    func runOnce<E: ExecutionEngine>(
        _ engine: E, container: ContainerInstance, options: RunOptions, label: String?
    ) throws -> Int32 {
        let mode = engine.mode
        let capabilities = engine.capabilities
        if !capabilities.contains(.nestsUnderPRoot), let tracer = EngineNesting.prootTracer() {
            throw CapabilityNotice.nestedPRoot(mode, tracer: tracer).error
        }
        if container.overlay != nil, !capabilities.contains(.overlayRoot) {
            throw CapabilityNotice.overlayNeedsN1(container: label ?? container.id, mode: mode).error
        }
        let messages = Messages(verbosity: engine.environment.debug ? 5 : engine.environment.verbosity)
        var run = EngineRun(
            container: container, requestedContainer: container, requestedOptions: options, options: options,
            environment: engine.environment, messages: messages)
        defer { run.cleanup.reversed().forEach { $0() } }
        let prepared = try engine.prepare(&run)
        if let next = run.handOver {
            let other = try registry.engine(for: next, environment: engine.environment, io: engine.io)
            return try runOnce(other, container: container, options: options, label: label)
        }
        let plan = try ExecutionPlan.make(
            container: run.container, options: run.options, environment: run.environment,
            mode: mode, capabilities: capabilities)
        defer { plan.removeTemporaryFiles() }
        PlanWarning.shown(plan.warnings, hiding: run.hiddenWarnings).forEach(messages.warning)
        let launch = try engine.launch(plan, prepared: prepared, run: run)
        defer { launch.cleanup.reversed().forEach { $0() } }
        if let banner = plan.banner(options: options, environment: engine.environment) { messages.write(banner) }
        if messages.verbosity >= 4 { launch.summary().forEach(messages.verbose) }
        let child = ChildLaunch(
            path: launch.path, arguments: launch.arguments, environment: launch.environment,
            cwd: launch.cwd, cpus: plan.cpus, io: engine.io, keepDescriptor: plan.jobDescriptor, namespace: launch.namespace,
            join: launch.join)
        let status = try Self.spawnAndWait(child, mode: mode, startError: launch.startError)
        return try launch.finish?(status) ?? status
    }

    /// Starts `child` and waits for it (signals forwarded); a failed start becomes an
    /// `EngineError` (`<mode>: <step>: <reason>` unless the engine words it).
    static func spawnAndWait(
        _ child: ChildLaunch, mode: ExecutionMode,
        startError: ((ChildLaunch.Failure) -> EngineError)? = nil
    ) throws -> Int32 {
        let pid: pid_t
        do { pid = try child.spawn() } catch {
            throw startError?(error)
                ?? EngineError(.cannotStart, "\(mode.rawValue): \(error.step): \(String(cString: strerror(error.errno)))")
        }
        return ChildLaunch.wait(pid)
    }
}
