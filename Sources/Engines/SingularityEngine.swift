import ContainerModel
import FoundationEssentials
import Synchronization
import UDockerSystem
#if canImport(Glibc)
import Glibc
#endif

/// S1: the host's `apptainer` or `singularity` (udocker `engine/singularity.py`):
/// `<tool> [--quiet] exec -w [-u] [--fakeroot] --pwd <cwd> -B h:c ... --home ROOT/root:/root
/// -B ROOT/tmp:/tmp -B ROOT/var/tmp:/var/tmp ROOT <cmd> <args>`, the container environment passed
/// as `APPTAINERENV_<K>` (apptainer) or `SINGULARITYENV_<K>` (singularity; udocker issue #434).
public struct SingularityEngine: ExecutionEngine {
    public var environment: EngineEnvironment
    public var io: StandardIO
    public var mode: ExecutionMode { .S1 }
    public static let modes: [ExecutionMode] = [.S1]
    public static func capabilities(of mode: ExecutionMode) -> EngineCapabilities {
        [.readOnlyVolumes, .nestsUnderPRoot, .passesDescriptors]
    }

    public init(environment: EngineEnvironment, io: StandardIO = .inherit) {
        self.environment = environment
        self.io = io
    }

    public struct Tool: Sendable, Equatable {
        public var path: String
        /// From `<bindir>` (udocker then adds `-u`, user namespace mode).
        public var fromBinDir: Bool
        public var isApptainer: Bool { PathName.basename(path).contains("apptainer") }
        public var environmentPrefix: String { isApptainer ? "APPTAINERENV_" : "SINGULARITYENV_" }
    }

    /// udocker's search (`ToolLocator.apptainer`): `UDOCKER_USE_SINGULARITY_EXECUTABLE`, else
    /// `apptainer`, `singularity` in PATH, else `<bindir>/apptainer-<arch>`, … `singularity`.
    public func locateTool() throws -> Tool {
        do {
            let t = try ToolLocator(environment: environment).apptainer()
            return Tool(path: t.path, fromBinDir: t.origin == .binDir)
        } catch {
            throw EngineError(.toolNotFound, "\(error)", cause: error)
        }
    }

    /// udocker: resolv.conf, host.conf and /lib/modules (Apptainer mounts /proc, /dev, /sys itself).
    static func sysdirs(from configured: [String]) -> [String] {
        configured.filter { d in
            let n = PathName.normalize(d)
            return !["/dev", "/proc", "/sys"].contains(where: { PathName.isUnder(n, $0) })
        }
    }

    /// Directories Apptainer needs in the root.
    static let requiredDirectories = ["/tmp", "/var/tmp", "/proc", "/dev", "/sys", "/root"]

    public func prepare(_ run: inout EngineRun) throws -> Tool {
        let tool = try locateTool()
        run.environment.sysdirs = Self.sysdirs(from: environment.sysdirs)
        return tool
    }

    public func launch(_ plan: ExecutionPlan, prepared tool: Tool, run: EngineRun) throws -> Launch {
        let messages = run.messages
        let root = try RootDirectory(path: plan.root)
        var unusable: Set<String> = []
        for d in Self.requiredDirectories {
            // A symlink there is left alone (and not bound from the host side: it could point out of ROOT).
            do { try root.makeMountpoint(d, directory: true) } catch {
                unusable.insert(d)
                messages.warning("S1: cannot use \(d) of the container: \(error)")
            }
        }
        let mounts = try MountPlan.resolve(plan, messages: messages)
        var fakeroot = false
        if plan.user.isRoot {
            fakeroot =
                Self.hostUserHasSubordinateIDs() && Self.supportsFakeroot(tool.path, environment: toolEnvironment(tool: tool, plan: nil))
            if !fakeroot {
                messages.verbose("S1: --fakeroot is not available (needs /etc/subuid and /etc/subgid entries): running as yourself")
            }
        } else if plan.user.uid != getuid() {
            messages.warning(
                "S1 runs the command as yourself (uid \(getuid())): --user=\(run.options.user ?? plan.user.name) "
                    + "is not supported by this engine; use N1, P1 or R2")
        }
        let argv = commandLine(tool: tool, plan: plan, mounts: mounts, fakeroot: fakeroot, options: run.options, unusable: unusable)
        return Launch(path: tool.path, arguments: argv, environment: toolEnvironment(tool: tool, plan: plan), summary: ["CMD = \(argv)"])
    }

    /// The tool's argv (udocker `singularity.py` `run`).
    func commandLine(
        tool: Tool, plan: ExecutionPlan, mounts: [BindMount],
        fakeroot: Bool, options: RunOptions, unusable: Set<String> = []
    ) -> [String] {
        var argv = [tool.path]
        if environment.debug {
            argv += ["--debug", "-v"]
        } else if environment.verbosity >= 4 {
            argv.append("-v")
        } else if environment.verbosity <= 1 {
            argv.append("--silent")
        } else {
            argv.append("--quiet")
        }
        argv += ["exec", "-w"]
        if tool.fromBinDir { argv.append("-u") }
        if fakeroot { argv.append("--fakeroot") }
        argv += ["--pwd", plan.cwd]
        for m in mounts { argv += ["-B", "\(m.source):\(m.target)" + (m.readOnly ? ":ro" : "")] }
        let targets = Set(mounts.map(\.target)).union(unusable)
        let homeBound = options.bindhome || targets.contains("/root")
        if !homeBound { argv += ["--home", "\(plan.root)/root:/root"] }
        if !targets.contains("/tmp") { argv += ["-B", "\(plan.root)/tmp:/tmp"] }
        if !targets.contains("/var/tmp") { argv += ["-B", "\(plan.root)/var/tmp:/var/tmp"] }
        argv.append(plan.root)
        argv.append(plan.executable)
        return argv + plan.arguments.dropFirst()
    }

    /// The tool's own environment: a few host variables it needs, plus the container's
    /// environment as `<PREFIX><K>=<V>` (the tool strips the prefix inside the container).
    func toolEnvironment(tool: Tool, plan: ExecutionPlan?) -> [String] {
        var e: [String] = []
        for k in ["PATH", "HOME", "USER", "LOGNAME", "TERM", "XDG_RUNTIME_DIR"] {
            if let v = environment.hostEnvironment[k] { e.append("\(k)=\(v)") }
        }
        for kv in plan?.environment ?? [] { e.append(tool.environmentPrefix + kv) }
        return e
    }

    /// The invoking user has entries in both /etc/subuid and /etc/subgid (by name or uid).
    static func hostUserHasSubordinateIDs(subuid: String = "/etc/subuid", subgid: String = "/etc/subgid") -> Bool {
        RuncIdentity.firstSubordinateID(subuid, uid: getuid()) != nil
            && RuncIdentity.firstSubordinateID(subgid, uid: getuid()) != nil
    }

    /// `<tool> exec --help` mentions `--fakeroot` (cached per path, size and mtime).
    static func supportsFakeroot(_ path: String, environment: [String]) -> Bool {
        var st = stat()
        guard stat(path, &st) == 0 else { return false }
        let key = "\(path)|\(st.st_size)|\(st.st_mtim.tv_sec)|\(st.st_mtim.tv_nsec)"
        if let cached = fakerootCache.withLock({ $0[key] }) { return cached }
        var env: [String: String] = [:]
        for kv in environment { if let eq = kv.firstIndex(of: "=") { env[String(kv[..<eq])] = String(kv[kv.index(after: eq)...]) } }
        var found = false
        if let run = try? Subprocess.run(path, ["exec", "--help"], environment: env, errorOutput: .capture) {
            found = run.text.contains("--fakeroot")
        }
        fakerootCache.withLock { $0[key] = found }
        return found
    }
    private static let fakerootCache = Mutex<[String: Bool]>([:])
}
