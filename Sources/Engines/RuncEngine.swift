import ContainerModel
import CLinux
import FoundationEssentials
import OCI
import UDockerSystem
#if canImport(Glibc)
import Glibc
#endif

/// R1/R2/R3: a rootless OCI runtime (runc, crun or runsc) with a spec written by our code
/// (udocker `engine/runc.py`, minus its bugs). Container root is mapped onto the invoking user;
/// host network; no cgroups. R2/R3 run PRoot inside the container (R3 without seccomp), which
/// also gives them `--user`.
///
/// Every run has its own bundle and state directory and its own runtime container id, so runs of
/// one container do not race. Without a terminal the runtime is started detached and the
/// command inherits our stdin/stdout/stderr directly (no pty, no copy); this process is a child
/// subreaper, so the command becomes our child and we wait for it and forward signals to it.
public struct RuncEngine: ExecutionEngine {
    public var mode: ExecutionMode
    public static let modes: [ExecutionMode] = [.R1, .R2, .R3]
    /// R1 runs the command as the runtime's user (you only through `RuncIdentity`); R2/R3 change
    /// the user with PRoot inside, which does not nest under PRoot.
    public static func capabilities(of mode: ExecutionMode) -> EngineCapabilities {
        mode == .R1
            ? [.deviceOption, .readOnlyVolumes, .nestsUnderPRoot, .ownUserNamespace, .identityThroughOuterNamespace]
            : [.deviceOption, .readOnlyVolumes, .anyUser, .ownUserNamespace]
    }
    public var environment: EngineEnvironment
    public var io: StandardIO
    /// `--device host[:cont[:perms]]` entries.
    public var devices: [String]

    public init(mode: ExecutionMode = .R1, environment: EngineEnvironment, io: StandardIO = .inherit, devices: [String] = []) {
        precondition(mode == .R1 || mode == .R2 || mode == .R3, "RuncEngine runs R1, R2 or R3")
        self.mode = mode
        self.environment = environment
        self.io = io
        self.devices = devices
    }

    /// The OCI runtime found on this host.
    public struct Runtime: Sendable, Equatable {
        public enum Flavor: String, Sendable { case runc, crun, runsc }
        public var path: String
        public var flavor: Flavor

        public init(path: String) {
            self.path = path
            let name = PathName.basename(path)
            flavor = name.contains("runsc") ? .runsc : name.contains("crun") ? .crun : .runc
        }
    }

    // MARK: locating the runtime

    /// udocker's search (`ToolLocator.ociRuntime`): `UDOCKER_USE_RUNC_EXECUTABLE`, else
    /// `runc`, `crun`, `runsc` in PATH, else `<bindir>/runc-<arch>`, `runc`, `crun-<arch>`, `crun`.
    public func locateRuntime() throws -> Runtime {
        do { return Runtime(path: try ToolLocator(environment: environment).ociRuntime(mode: mode).path) } catch {
            throw EngineError(.toolNotFound, "\(error)", cause: error)
        }
    }

    /// The R modes' default binds: runc brings its own /proc, /dev and /sys; resolv.conf,
    /// host.conf and hosts come from the host (udocker: resolv.conf and host.conf only).
    static func sysdirs(from configured: [String]) -> [String] {
        var list = configured.filter { d in
            let n = PathName.normalize(d)
            return !["/dev", "/proc", "/sys", "/lib/modules"].contains(where: { PathName.isUnder(n, $0) })
        }
        if !list.contains("/etc/hosts") && list.contains("/etc/resolv.conf") { list.append("/etc/hosts") }
        return list
    }

    // MARK: run

    public func prepare(_ run: inout EngineRun) throws -> Runtime {
        let runtime = try locateRuntime()
        run.environment.sysdirs = Self.sysdirs(from: environment.sysdirs)
        return runtime
    }

    public func launch(_ plan: ExecutionPlan, prepared runtime: Runtime, run: EngineRun) throws -> Launch {
        for m in plan.mounts where ["/dev", "/proc", "/sys"].contains(m.target) {
            throw EngineError.invalid("\(mode.rawValue): a volume cannot replace \(m.target) (the runtime mounts it)")
        }
        let proot = mode == .R1 ? nil : try ProotInside.prepare(plan: plan, environment: environment)
        let identity =
            runsAsYou(plan, runtime: runtime)
            ? RuncIdentity.make(uid: getuid(), gid: getgid(), environment: environment.hostEnvironment) : nil
        if !capabilities.contains(.anyUser) && !plan.user.isRoot && identity == nil {
            run.messages.warning(
                "R1 runs the command as root (uid 0, which is you on the host): a rootless runtime "
                    + "maps only container root onto your uid; for --user=\(run.options.user ?? plan.user.name) use R2, R3, N1 or P1")
        }
        let mounts = try MountPlan.resolve(plan, messages: run.messages)
        let devices =
            try (self.devices + run.options.devices).map(DeviceSpec.parse)
            + plan.devices.map { DeviceSpec(host: $0.host, container: $0.container, type: "c", major: $0.major, minor: $0.minor) }
        let terminal = isatty(io.input ?? 0) == 1 && isatty(io.output ?? 1) == 1
        let spec = try Self.makeSpec(
            plan: plan, mounts: mounts, proot: proot, devices: devices, runtime: runtime,
            terminal: terminal, hostname: Self.hostname(container: run.container, options: run.options),
            hostUID: getuid(), hostGID: getgid(), identity: identity)
        let bundle = try RunBundle.create(tmpDir: environment.tmpDir, containerID: run.container.id)
        do { try bundle.writeSpec(spec.encoded()) } catch { bundle.remove(); throw error }
        // No terminal: `run --detach`, the command inherits our stdio and is waited for once the
        // runtime has started it. A terminal: plain `run`; the runtime allocates the pty and
        // returns the command's status.
        let detached = !terminal && Self.childSubreaper
        let argv =
            globalArguments(runtime, bundle: bundle, identity: identity)
            + (detached ? ["run", "--detach", "--pid-file", bundle.pidFile] : ["run"]) + ["--bundle", bundle.path, bundle.runtimeID]
        var launch = Launch(
            path: argv[0], arguments: argv, environment: runtimeEnvironment,
            summary: [
                "\(mode.rawValue): \(runtime.path) bundle=\(bundle.path) id=\(bundle.runtimeID) CMD = \(spec.process.args)"
            ])
        // Detached: a forwarding slot is held for the command from before the runtime starts
        // until the command has been waited for (no window where a signal kills udocker alone).
        let hold = detached ? ForwardingHold() : nil
        if let hold { launch.finish = { try waitForCommand(runtime: runtime, bundle: bundle, runtimeStatus: $0, hold: hold) } }
        launch.cleanup = [bundle.remove, { deleteState(runtime: runtime, bundle: bundle, identity: identity) }, { hold?.drop() }]
        return launch
    }

    /// R1 runs the command as you (not as container root) when the plan's user is you and not root
    /// (see `RuncIdentity`); R2/R3 do `--user` with PRoot, runsc has its own rootless set-up.
    func runsAsYou(_ plan: ExecutionPlan, runtime: Runtime) -> Bool {
        mode == .R1 && runtime.flavor != .runsc && !plan.user.isRoot && plan.user.uid == getuid() && plan.user.gid == getgid()
    }

    /// The runtime's argv up to its subcommand: the outer namespaces when running as you, then
    /// the runtime and its global options.
    func globalArguments(_ runtime: Runtime, bundle: RunBundle, identity: RuncIdentity? = nil) -> [String] {
        var argv = (identity?.wrapper ?? []) + [runtime.path]
        if environment.debug { argv.append("--debug") }
        switch runtime.flavor {
        case .runsc: argv += ["--network=host", "--ignore-cgroups", "--rootless"]
        case .crun: argv += ["--cgroup-manager=disabled"]
        case .runc: break
        }
        return argv + ["--root", bundle.statePath]
    }

    /// The runtime's own environment: only what it needs (PATH for newuidmap and friends).
    var runtimeEnvironment: [String] {
        var e = ["PATH=\(environment.hostEnvironment["PATH"] ?? "/usr/sbin:/usr/bin:/sbin:/bin")"]
        if let x = environment.hostEnvironment["XDG_RUNTIME_DIR"] { e.append("XDG_RUNTIME_DIR=\(x)") }
        return e
    }

    /// `run --detach` returned `runtimeStatus`: the command's pid is in the pid file; waits for it.
    func waitForCommand(runtime: Runtime, bundle: RunBundle, runtimeStatus status: Int32, hold: ForwardingHold? = nil) throws -> Int32 {
        guard status == 0 else {
            let hint = runtime.flavor == .crun ? "; if crun rejects this host's cgroups, use runc (apt-get install runc)" : ""
            throw EngineError(
                .cannotStart,
                "\(mode.rawValue): \(PathName.basename(runtime.path)) could not start the container "
                    + "(exit status \(status), its message is above)\(hint)")
        }
        guard let text = try? String(contentsOfFile: bundle.pidFile, encoding: .utf8),
            let pid = pid_t(text.trimmed()), pid > 0
        else {
            throw EngineError(.cannotStart, "\(mode.rawValue): the runtime did not report the container's pid")
        }
        return ChildLaunch.wait(pid, hold: hold)
    }

    /// `<runtime> delete --force <id>`: removes the runtime's state (quietly).
    func deleteState(runtime: Runtime, bundle: RunBundle, identity: RuncIdentity?) {
        let null = open("/dev/null", O_RDWR | O_CLOEXEC)
        defer { if null >= 0 { close(null) } }
        let quiet = StandardIO(input: null, output: null, error: null)
        let argv = globalArguments(runtime, bundle: bundle, identity: identity) + ["delete", "--force", bundle.runtimeID]
        _ = try? EngineRunner.spawnAndWait(
            ChildLaunch(
                path: argv[0], arguments: argv, environment: runtimeEnvironment,
                cwd: nil, cpus: nil, io: quiet), mode: mode)
    }

    /// udocker: the image's Hostname when it is qualified (contains "."), else the host's name.
    static func hostname(container: ContainerInstance, options: RunOptions) -> String {
        if !options.nometa, let h = container.imageConfig?.effectiveConfig.hostname, h.contains("."),
            h.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "." || $0 == "-") })
        {
            return h
        }
        var u = utsname()
        uname(&u)
        return withUnsafeBytes(of: u.nodename) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
    }

    /// Makes this process a child subreaper once, so that the command, orphaned when the
    /// detached runtime exits, is re-parented to us (and can be waited for).
    static let childSubreaper: Bool = {
        typealias Prctl = @convention(c) (Int32, UInt, UInt, UInt, UInt) -> Int32
        guard let handle = dlopen(nil, RTLD_NOW), let symbol = dlsym(handle, "prctl") else { return false }
        let prctl = unsafeBitCast(symbol, to: Prctl.self)
        let PR_SET_CHILD_SUBREAPER: Int32 = 36
        return prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    }()
}

/// A run's private directory: `config.json`, the runtime's state (`--root`) and the pid file.
struct RunBundle {
    var path: String
    var runtimeID: String
    var statePath: String { path + "/state" }
    var pidFile: String { path + "/container.pid" }

    /// `<tmp>/udocker-runc-<id8>-XXXXXX` (0700); the runtime id is unique per run.
    static func create(tmpDir: String, containerID: String) throws -> RunBundle {
        let id8 = String(containerID.prefix(8)).filter { $0.isLetter || $0.isNumber || $0 == "-" }
        var template = Array("\(tmpDir)/udocker-runc-\(id8)-XXXXXX".utf8CString)
        guard template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) != nil else {
            throw EngineError(.io, "cannot create a run directory in \(tmpDir): \(String(cString: strerror(errno)))")
        }
        let path = String(decoding: template.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let suffix = path.suffix(6).filter { $0.isLetter || $0.isNumber }
        return RunBundle(path: path, runtimeID: "udocker-\(id8)-\(suffix)-\(getpid())")
    }

    func writeSpec(_ data: Data) throws {
        let file = path + "/config.json"
        let fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw EngineError(.io, "cannot write \(file): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let ok = data.withUnsafeBytes { raw -> Bool in
            var off = 0
            while off < raw.count {
                let n = write(fd, raw.baseAddress! + off, raw.count - off)
                if n < 0 { if errno == EINTR { continue }; return false }
                off += n
            }
            return true
        }
        guard ok else { throw EngineError(.io, "cannot write \(file): \(String(cString: strerror(errno)))") }
    }

    func remove() { try? FileManager.default.removeItem(atPath: path) }
}

/// `--device host[:cont[:perms]]` (udocker takes major/minor from `st_dev`, a bug: we use `st_rdev`).
struct DeviceSpec: Sendable, Equatable {
    var host: String
    var container: String
    var type: String
    var major: Int64
    var minor: Int64

    static func parse(_ text: String) throws -> DeviceSpec {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        guard (1...3).contains(parts.count), parts[0].hasPrefix("/") else {
            throw EngineError.invalid("invalid device: \(text)")
        }
        let host = PathName.normalize(parts[0])
        let cont = parts.count > 1 && !parts[1].isEmpty ? parts[1] : host
        guard cont.hasPrefix("/"), PathName.isUnder(PathName.normalize(cont), "/dev") else {
            throw EngineError.invalid("invalid device, the container path must be under /dev: \(text)")
        }
        var st = stat()
        guard stat(host, &st) == 0 else { throw EngineError.invalid("device not found: \(host)") }
        let kind = st.st_mode & S_IFMT
        guard kind == S_IFCHR || kind == S_IFBLK else { throw EngineError.invalid("not a device: \(host)") }
        let rdev = UInt64(st.st_rdev)
        let major = ((rdev >> 8) & 0xfff) | ((rdev >> 32) & ~UInt64(0xfff))
        let minor = (rdev & 0xff) | ((rdev >> 12) & ~UInt64(0xff))
        return DeviceSpec(
            host: host, container: PathName.normalize(cont), type: kind == S_IFCHR ? "c" : "b",
            major: Int64(major), minor: Int64(minor))
    }
}
