import CLinux
import Foundation
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

    public init(environment: EngineEnvironment, io: StandardIO = .inherit) {
        self.environment = environment
        self.io = io
    }

    public func run(_ container: ContainerInstance, options: RunOptions) throws -> Int32 {
        // Overlay container: plan against the merged tree (a helper holds the overlay mounted
        // meanwhile; mountpoints created in it land in upper/), then launch on the real ROOT.
        var view: OverlayView?
        defer { view?.close() }
        var planned = container
        if let overlay = container.overlay {
            do {
                view = try OverlayView(root: container.root, cacheDirectory: overlay.cacheDirectory, options: overlay.options)
            } catch {
                throw EngineError(.cannotStart, "N1 cannot mount the overlay container: \(error); "
                                  + "use udocker setup --execmode=P1 \(container.names.first ?? container.id) to make it a flat container")
            }
            planned.root = view!.path
        }
        var plan = try ExecutionPlan.make(container: planned, options: options, environment: environment, mode: .N1)
        defer { plan.removeTemporaryFiles() }
        let messages = Messages(verbosity: environment.debug ? 5 : environment.verbosity)
        plan.warnings.forEach(messages.warning)
        var mounts = try Self.prepareMounts(plan, messages: messages)
        if let overlay = container.overlay {
            view?.close()
            view = nil
            plan.environment = plan.environment.map { $0.hasPrefix("container_root=") ? "container_root=\(container.root)" : $0 }
            plan.root = container.root
            plan.container = container
            mounts.insert(BindMount(source: UDOCKER_OVERLAY_PREFIX + overlay.cacheDirectory, target: overlay.options), at: 0)
        }
        if let banner = plan.banner(options: options, environment: environment) { messages.write(banner) }
        messages.verbose("N1: root=\(plan.root) uid=\(plan.user.uid):\(plan.user.gid) cwd=\(plan.cwd) "
                         + "mounts=\(mounts.map { "\($0.source):\($0.target)" }) CMD = \(plan.arguments)")
        let launch = ChildLaunch(path: plan.executable, arguments: plan.arguments, environment: plan.environment,
                                 cwd: plan.cwd, cpus: plan.cpus, io: io,
                                 namespace: .init(root: plan.root, insideUID: plan.user.uid, insideGID: plan.user.gid,
                                                  hostUID: getuid(), hostGID: getgid(), mounts: mounts))
        let pid: pid_t
        do {
            pid = try launch.spawn()
        } catch {
            throw Self.startError(error, container: container)
        }
        return ChildLaunch.wait(pid)
    }

    static func startError(_ failure: ChildLaunch.Failure, container: ContainerInstance) -> EngineError {
        let reason = String(cString: strerror(failure.errno))
        var message = "N1: \(failure.step): \(reason)"
        let namespaceStep = failure.step.hasPrefix("unshare") || failure.step.contains("_map")
            || failure.step.contains("setgroups") || failure.step.hasPrefix("make / rprivate")
        if namespaceStep {
            let why = EngineSelector.userNamespaceProblem() ?? "\(failure.step): \(reason)"
            let name = container.names.first ?? container.id
            message = "N1 cannot start: \(why); use P1 (udocker setup --execmode=P1 \(name))"
                + (HostProbe.userNamespaceAdminFix(why).map { ", or ask the administrators for: \($0)" } ?? "")
        }
        return EngineError(.cannotStart, message)
    }

    /// Resolves every mount target inside ROOT (symlinks followed within ROOT only), creates the
    /// missing mountpoints there (no symlink followed), and orders parents before children.
    static func prepareMounts(_ plan: ExecutionPlan, messages: Messages) throws -> [BindMount] {
        let root = ContainerRoot(plan.root)
        var result: [(source: String, target: String, depth: Int, index: Int)] = []
        for (index, m) in plan.mounts.enumerated() {
            func drop(_ why: String) throws {
                if m.isSysdir { messages.verbose("N1: not binding \(m.source): \(why)"); return }
                throw EngineError(.setupFailed, "volume \(m.source):\(m.target): \(why)")
            }
            // Beneath another volume: the mountpoint lives in that host directory.
            let enclosing = plan.mounts.prefix(index).contains { PathName.isUnder(m.target, $0.target) && $0.target != m.target }
                || plan.mounts.suffix(from: index + 1).contains { PathName.isUnder(m.target, $0.target) && $0.target != m.target }
            if enclosing {
                result.append((m.source, m.target, PathName.components(m.target).count, index))
                continue
            }
            let r: ContainerRoot.Resolved
            do { r = try root.resolve(m.target) } catch {
                try drop("the mountpoint \(m.target) cannot be resolved in the container"); continue
            }
            if r.path != m.target,
               plan.mounts.contains(where: { $0.target != m.target && PathName.isUnder(r.path, $0.target) }) {
                try drop("the mountpoint \(m.target) is a symlink into another volume (\(r.path))"); continue
            }
            if r.path == "/" { try drop("the mountpoint \(m.target) resolves to /"); continue }
            if !r.exists {
                do { try root.makeMountpoint(r.path, directory: m.isDirectory) } catch {
                    try drop("cannot create the mountpoint \(r.path) in the container: \(error)"); continue
                }
            } else if r.isDirectory != m.isDirectory {
                try drop(m.isDirectory ? "\(m.target) is not a directory in the container"
                                       : "\(m.target) is a directory in the container"); continue
            }
            result.append((m.source, r.path, PathName.components(r.path).count, index))
        }
        result.sort { ($0.depth, $0.index) < ($1.depth, $1.index) }
        return result.map { BindMount(source: $0.source, target: $0.target, readOnly: plan.mounts[$0.index].readOnly) }
    }
}
