import ContainerModel
import FoundationEssentials
import UDockerSystem
import OCI
#if canImport(Glibc)
import Glibc
#endif

/// Everything an engine needs to start a container, computed once by the common run pipeline
/// (udocker `engine/base.py` `_run_init`): metadata merge, environment, user and auth files,
/// volumes, working directory and executable. Engines only translate it to their tool.
public struct ExecutionPlan: Sendable {
    /// A bind of a host path (`source`) at a container path (`target`, normalised, not resolved).
    public struct Mount: Sendable, Equatable {
        public var source: String
        public var target: String
        /// One of the default sysdirs (dropped silently when it cannot be set up).
        public var isSysdir: Bool
        public var isDirectory: Bool
        /// `-v host:cont:ro`, and every host file udocker chooses to show the container (`hostFile`).
        public var readOnly = false

        /// A host file or directory udocker binds on its own account (the host MPI's libraries and
        /// plugins): read-only, so a container cannot change code the host runs later outside it.
        /// Only the job's shared state (`/dev/shm`, the launcher's session directory) stays writable.
        public static func hostFile(_ source: String, at target: String, isDirectory: Bool) -> Mount {
            Mount(source: source, target: target, isSysdir: false, isDirectory: isDirectory, readOnly: true)
        }
    }

    public struct Device: Sendable, Equatable {
        public var host: String
        public var container: String
        public var major: Int64
        public var minor: Int64
    }

    /// The user the command runs as inside the container.
    public struct User: Sendable, Equatable {
        public var name: String
        public var uid: UInt32
        public var gid: UInt32
        public var home: String
        public var gecos: String
        public var shell: String
        public var isRoot: Bool { uid == 0 }
    }

    public var mode: ExecutionMode
    public var container: ContainerInstance
    /// Host path of the container root.
    public var root: String
    public var user: User
    public var mounts: [Mount]
    /// Container path of the working directory.
    public var cwd: String
    /// Container path of the program to execute (found through PATH, symlinks not resolved).
    public var executable: String
    /// argv, argv[0] as the user wrote it.
    public var arguments: [String]
    /// The complete environment of the command, `K=V`, in a stable order.
    public var environment: [String]
    /// Keys whose value came from the image's `Env` (untrusted: never allowed to steer an engine).
    public var imageEnvironmentKeys: Set<String>
    /// Device nodes to provide (host path, container path under /dev, major:minor): the R modes
    /// put them in the OCI spec; N1 and PRoot get binds in `mounts` instead (see `addNVIDIA`).
    public var devices: [Device] = []
    /// CPUs from `--cpuset-cpus`.
    public var cpus: [Int]?
    /// `--kernel` (P modes).
    public var kernel: String?
    /// The descriptor of a job's PMI connection (`PMI_FD`, MPICH's Hydra), kept open for the command.
    public var jobDescriptor: Int32?
    /// A rank of an MPI launcher's job (`JobEnvironment.keepsHostIdentity`): R1 keeps the host's
    /// PID namespace for it (ranks exchange PIDs; see `RuncEngine.makeSpec`).
    public var isMPIRank = false
    /// Warnings for the user (printed by the engine at warning level).
    public var warnings: [PlanWarning]
    /// Files created for this run (passwd/group copies); removed by `removeTemporaryFiles()`.
    public var temporaryFiles: [String]

    /// Runs the common pipeline. Throws `EngineError` (`.invalidArgument`, `.io`).
    /// `capabilities`: what the engine can honour (by default, the standard engine of `mode`).
    public static func make(
        container: ContainerInstance, options: RunOptions, environment: EngineEnvironment,
        mode: ExecutionMode, capabilities: EngineCapabilities? = nil
    ) throws -> ExecutionPlan {
        var b = PlanBuilder(
            container: container, options: options, env: environment, mode: mode,
            capabilities: capabilities ?? EngineRegistry.standard.capabilities(of: mode))
        do {
            return try b.build()
        } catch {
            b.removeTemporaryFiles()
            throw error
        }
    }

    public func removeTemporaryFiles() { Self.removeTemporary(temporaryFiles) }

    /// Files, and directories (the per-run `--nvidia` directory), made for one run.
    static func removeTemporary(_ paths: [String]) {
        for f in paths where unlink(f) != 0 && (errno == EISDIR || errno == EPERM) {
            try? FileManager.default.removeItem(atPath: f)
        }
    }

    /// Value of `key` in the environment.
    public func environmentValue(_ key: String) -> String? {
        for e in environment {
            if let eq = e.firstIndex(of: "="), e[..<eq] == key { return String(e[e.index(after: eq)...]) }
        }
        return nil
    }

    /// The startup banner (udocker `_run_banner`), or nil when suppressed.
    public func banner(options: RunOptions, environment: EngineEnvironment) -> String? {
        guard !options.noBanner, environment.verbosity >= 3 else { return nil }
        return Banner.text(containerID: container.id, executable: executable, fill: mode.bannerCharacter)
    }
}

/// Host facts gathered once.
struct HostIdentity: Sendable {
    var uid: UInt32
    var gid: UInt32
    var name: String
    var home: String?
    var groups: [UInt32]

    static func current(environment: [String: String]) -> HostIdentity {
        let uid = getuid(), gid = getgid()
        var name = environment["USER"] ?? String(uid)
        var home = environment["HOME"]
        var pwd = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 16384)
        if getpwuid_r(uid, &pwd, &buffer, buffer.count, &result) == 0, result != nil {
            name = String(cString: pwd.pw_name)
            if home == nil { home = String(cString: pwd.pw_dir) }
        }
        var groups: [UInt32] = []
        let n = getgroups(0, nil)
        if n > 0 {
            var list = [gid_t](repeating: 0, count: Int(n))
            let m = getgroups(n, &list)
            if m > 0 { groups = Array(list.prefix(Int(m))) }
        }
        return HostIdentity(uid: uid, gid: gid, name: name, home: home, groups: groups)
    }
}

/// The pipeline's working state.
struct PlanBuilder {
    let container: ContainerInstance
    let options: RunOptions
    let env: EngineEnvironment
    let mode: ExecutionMode
    let capabilities: EngineCapabilities
    let meta: ImageConfig.Config
    let host: HostIdentity
    /// The container root, opened for in-root lookups (throws when it is gone).
    var rootFS: RootDirectory { get throws { try RootDirectory(path: container.root) } }

    var warnings: [PlanWarning] = []
    var temporaryFiles: [String] = []
    var containerEnv = EnvironmentList()
    var imageKeys: Set<String> = []
    var volumes: [VolumeSpec] = []
    var user = ExecutionPlan.User(name: "root", uid: 0, gid: 0, home: "/", gecos: "", shell: "")
    var authMounts: [VolumeSpec] = []
    /// The host's Open MPI MCA file values for a rank whose container has none (`checkMPI`).
    var mpiParameters: [(String, String)] = []

    init(
        container: ContainerInstance, options: RunOptions, env: EngineEnvironment, mode: ExecutionMode,
        capabilities: EngineCapabilities
    ) {
        self.container = container
        self.options = options
        self.env = env
        self.mode = mode
        self.capabilities = capabilities
        self.meta = options.nometa ? ImageConfig.Config() : (container.imageConfig?.effectiveConfig ?? ImageConfig.Config())
        self.host = HostIdentity.current(environment: env.hostEnvironment)
    }

    mutating func removeTemporaryFiles() {
        ExecutionPlan.removeTemporary(temporaryFiles)
        temporaryFiles.removeAll()
    }

    mutating func build() throws -> ExecutionPlan {
        var st = stat()
        guard stat(container.root, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR else {
            throw EngineError(.io, "container root not found: \(container.root)")
        }
        try buildContainerEnvironment()
        volumes = try parseVolumes()
        try setupUser()
        var mounts = try assembleMounts()
        setDefaultPath()
        let devices = try addNVIDIA(&mounts)
        let bindings = mounts.map { RootDirectory.Volume(host: $0.source, container: $0.target) }
        let cwd = try workingDirectory(bindings: bindings)
        let (executable, arguments) = try findExecutable(cwd: cwd, bindings: bindings)
        if volumes.contains(where: { $0.readOnly }) && !capabilities.contains(.readOnlyVolumes) {
            throw CapabilityNotice.readOnlyVolumes(mode).error
        }
        mounts += try checkMPI(executable: executable, bindings: bindings)
        try checkReadOnlyHostFiles(mounts)
        let cpus = try options.cpusetCpus.map(Self.parseCPUSet)
        // Options an engine cannot honour are said, never silently dropped (README: run options).
        if options.kernel != nil && !capabilities.contains(.emulatedKernel) {
            warnings.append(.optionIgnored(CapabilityNotice.kernelIgnored(mode).message))
        }
        if !options.devices.isEmpty && !capabilities.contains(.deviceOption) {
            warnings.append(.optionIgnored(CapabilityNotice.deviceIgnored(mode).message))
        }
        let environment = finalEnvironment()
        return ExecutionPlan(
            mode: mode, container: container, root: try rootFS.path, user: user, mounts: mounts,
            cwd: cwd, executable: executable, arguments: arguments, environment: environment,
            imageEnvironmentKeys: imageKeys, devices: devices, cpus: cpus, kernel: options.kernel,
            jobDescriptor: jobDescriptor, isMPIRank: JobEnvironment.keepsHostIdentity(env.hostEnvironment), warnings: warnings,
            temporaryFiles: temporaryFiles)
    }

    /// Read-only host files (`Mount.hostFile`, and GPU driver files) in an engine that cannot bind
    /// read-only (PRoot, Fakechroot: the container runs as you on your own files). Refused when you
    /// can change the file or replace it in its directory (a Spack or EasyBuild MPI in your home);
    /// a file only root may change (the system's MPI) is as safe there as in N1.
    func checkReadOnlyHostFiles(_ mounts: [ExecutionPlan.Mount]) throws {
        guard !capabilities.contains(.readOnlyVolumes) else { return }
        // (A user's `-v …:ro` was refused before: every read-only mount left is one of ours.)
        for m in mounts where m.readOnly && Self.userCanChange(m.source) {
            throw CapabilityNotice.writableHostFile(mode, path: m.source).error
        }
    }

    /// The calling user may write `path`, or rename it away in its directory.
    static func userCanChange(_ path: String) -> Bool {
        access(path, W_OK) == 0 || access(PathName.parent(path), W_OK) == 0
    }

    /// `1,2-3` → [1, 2, 3].
    static func parseCPUSet(_ text: String) throws -> [Int] {
        var cpus: [Int] = []
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            let range = part.split(separator: "-", omittingEmptySubsequences: false)
            if range.count == 1, let n = Int(range[0]), n >= 0, n < 1024 { cpus.append(n); continue }
            if range.count == 2, let a = Int(range[0]), let b = Int(range[1]), a >= 0, a <= b, b < 1024 {
                cpus.append(contentsOf: a...b); continue
            }
            throw EngineError.invalid("invalid --cpuset-cpus: \(text)")
        }
        return cpus
    }
}
