import ContainerModel
import FoundationEssentials
import UDockerSystem
#if canImport(Glibc)
import Glibc
#endif

/// P1/P2: PRoot (ptrace). P2 turns PRoot's seccomp acceleration off.
public struct PRootEngine: ExecutionEngine {
    public var mode: ExecutionMode
    public static let modes: [ExecutionMode] = [.P1, .P2]
    public static func capabilities(of mode: ExecutionMode) -> EngineCapabilities {
        [.emulatedKernel, .anyUser, .passesDescriptors, .perRunDevices]
    }
    public var environment: EngineEnvironment
    public var io: StandardIO

    public init(mode: ExecutionMode = .P1, environment: EngineEnvironment, io: StandardIO = .inherit) {
        precondition(mode == .P1 || mode == .P2, "PRootEngine runs P1 or P2")
        self.mode = mode
        self.environment = environment
        self.io = io
    }

    /// Variables that steer PRoot or the dynamic loader of the (host) proot binary: an image's
    /// `Env` may not set them.
    static func isEngineVariable(_ key: String) -> Bool {
        key.hasPrefix("PROOT_") || key == "LD_PRELOAD" || key == "LD_AUDIT" || key == "LD_LIBRARY_PATH"
    }

    public func prepare(_ run: inout EngineRun) throws -> PRootBinary {
        try ToolLocator(environment: environment).prootBinary()
    }

    public func launch(_ plan: ExecutionPlan, prepared proot: PRootBinary, run: EngineRun) throws -> Launch {
        let (argv, envp, dropped) = commandLine(proot: proot, plan: plan)
        for k in dropped { run.messages.warning("the image sets \(k), which would steer PRoot itself: ignored") }
        return Launch(path: proot.path, arguments: argv, environment: envp, summary: ["CMD = \(argv)"])
    }

    /// proot's argv and environment (udocker `engine/proot.py`), and the image variables dropped.
    func commandLine(proot: PRootBinary, plan: ExecutionPlan) -> ([String], [String], [String]) {
        var argv = [proot.path]
        if environment.debug { argv += ["-v", "9"] }
        if proot.supportsKillOnExit { argv.append("--kill-on-exit") }
        for m in plan.mounts { argv += ["-b", "\(m.source):\(m.target)"] }
        argv += plan.user.isRoot && plan.user.gid == 0 ? ["-0"] : ["-i", "\(plan.user.uid):\(plan.user.gid)"]
        // Only when asked: Debian's proot breaks dynamic loading with -k.
        if let k = plan.kernel, !k.isEmpty { argv += ["-k", k] }
        argv += ["-r", plan.root, "-w", plan.cwd]
        argv.append(plan.arguments[0].contains("/") ? plan.arguments[0] : plan.executable)
        argv += plan.arguments.dropFirst()

        var dropped: [String] = []
        var envp: [String] = []
        for e in plan.environment {
            let key = String(e.prefix(while: { $0 != "=" }))
            if plan.imageEnvironmentKeys.contains(key) && Self.isEngineVariable(key) { dropped.append(key); continue }
            if key == "PROOT_TMP_DIR" || key == "PROOT_NO_SECCOMP" { continue }
            envp.append(e)
        }
        envp.append("PROOT_TMP_DIR=\(environment.tmpDir)")
        if mode == .P2 { envp.append("PROOT_NO_SECCOMP=1") }
        return (argv, envp, dropped)
    }

    /// udocker's search (`ToolLocator.proot`).
    func locateProot() throws -> String {
        try ToolLocator(environment: environment).prootBinary().path
    }
}
