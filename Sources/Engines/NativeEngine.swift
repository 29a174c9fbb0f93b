import ContainerModel
import CLinux
import FoundationEssentials
import UDockerSystem
#if canImport(Glibc)
import Glibc
#endif

/// N1: rootless user + mount namespaces, no helper tool. The container's root is bound onto
/// itself, volumes are bound beneath it (targets opened with no symlink allowed), the process
/// pivots into it and executes the command as the requested uid (mapped onto the invoking user).
public struct NativeEngine: ExecutionEngine {
    public var environment: EngineEnvironment
    /// Standard I/O of the command (inherited by default).
    public var io: StandardIO
    public var mode: ExecutionMode { .N1 }
    public static let modes: [ExecutionMode] = [.N1]
    public static func capabilities(of mode: ExecutionMode) -> EngineCapabilities {
        [
            .overlayRoot, .readOnlyVolumes, .nestsUnderPRoot, .anyUser, .passesDescriptors, .perRunDevices, .ownUserNamespace,
            .joinsJobSteps,
        ]
    }

    public init(environment: EngineEnvironment, io: StandardIO = .inherit) {
        self.environment = environment
        self.io = io
    }

    /// Overlay container: plan against the merged tree (a helper holds the overlay mounted
    /// meanwhile; mountpoints created in it land in upper/), then launch on the real ROOT.
    public func prepare(_ run: inout EngineRun) throws -> OverlayView? {
        guard let overlay = run.container.overlay else { return nil }
        let view: OverlayView
        do {
            view = try OverlayView(root: run.container.root, cacheDirectory: overlay.cacheDirectory, options: overlay.options)
        } catch {
            let container = run.container
            throw EngineError(
                .cannotStart,
                "N1 cannot mount the overlay container: \(error); "
                    + "use udocker setup --execmode=P1 \(container.names.first ?? container.id) to make it a flat container")
        }
        run.cleanup.append(view.close)
        run.container.root = view.path
        return view
    }

    public func launch(_ planned: ExecutionPlan, prepared view: OverlayView?, run: EngineRun) throws -> Launch {
        var plan = planned
        let mounts = try MountPlan.resolve(plan, messages: run.messages)
        var overlay: ContainerInstance.OverlayMount?
        if let view, let o = run.requestedContainer.overlay {
            view.close()
            let container = run.requestedContainer
            plan.environment = plan.environment.map { $0.hasPrefix("container_root=") ? "container_root=\(container.root)" : $0 }
            plan.root = container.root
            plan.container = container
            overlay = o
        }
        var launch = Launch(
            path: plan.executable, arguments: plan.arguments, environment: plan.environment, cwd: plan.cwd,
            namespace: .init(
                root: plan.root, insideUID: plan.user.uid, insideGID: plan.user.gid,
                hostUID: getuid(), hostGID: getgid(), mounts: mounts, overlay: overlay),
            summary: [
                "N1: root=\(plan.root) uid=\(plan.user.uid):\(plan.user.gid) cwd=\(plan.cwd) "
                    + "mounts=\(Self.shown(mounts, overlay: overlay)) CMD = \(plan.arguments)"
            ])
        let container = run.requestedContainer
        launch.startError = { Self.startError($0, container: container) }
        // The ranks of a job step on this node: one container instance (issue 25, docs/hpc.md).
        if let step = JobStep.toJoin(run.options.join, environment: run.environment.hostEnvironment) {
            launch = try Self.joinedLaunch(
                launch, step: step, container: container.id, scratch: run.environment.tmpDir,
                environment: run.environment.hostEnvironment, messages: run.messages)
        }
        return launch
    }

    /// The mounts as the verbose line has always listed them (the overlay first).
    static func shown(_ mounts: [BindMount], overlay: ContainerInstance.OverlayMount?) -> [String] {
        (overlay.map { ["overlay:\($0.cacheDirectory):\($0.options)"] } ?? []) + mounts.map { "\($0.source):\($0.target)" }
    }

    static func startError(_ failure: ChildLaunch.Failure, container: ContainerInstance) -> EngineError {
        let reason = String(cString: strerror(failure.errno))
        var message = "N1: \(failure.step): \(reason)"
        let namespaceStep =
            failure.step.hasPrefix("unshare") || failure.step.contains("_map")
            || failure.step.contains("setgroups") || failure.step.hasPrefix("make / rprivate")
        if namespaceStep {
            let why = EngineSelector.userNamespaceProblem() ?? "\(failure.step): \(reason)"
            let name = container.names.first ?? container.id
            message =
                "N1 cannot start: \(why); use P1 (udocker setup --execmode=P1 \(name))"
                + (HostProbe.userNamespaceAdminFix(why).map { ", or ask the administrators for: \($0)" } ?? "")
        }
        return EngineError(.cannotStart, message)
    }
}
