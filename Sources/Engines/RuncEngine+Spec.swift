import ContainerModel
import FoundationEssentials
import UDockerSystem
#if canImport(Glibc)
import Glibc
#endif

extension RuncEngine {
    /// Capabilities of container root (inside its user namespace only): udocker's `runc_capabilities`.
    static let capabilities = [
        "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
        "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL",
        "CAP_AUDIT_WRITE",
    ]

    static let maskedPaths = [
        "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
        "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi",
    ]
    static let readonlyPaths = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]

    /// The runtime's own filesystems: /proc, a tmpfs /dev with the standard devices (the
    /// runtime adds null, zero, full, random, urandom, tty, ptmx), /dev/pts, /dev/shm,
    /// /dev/mqueue and a read-only /sys. No cgroup mount (rootless, no cgroup manager).
    static let baseMounts: [OCIRuntimeSpec.Mount] = [
        .init(destination: "/proc", type: "proc", source: "proc", options: nil),
        .init(destination: "/dev", type: "tmpfs", source: "tmpfs", options: ["nosuid", "strictatime", "mode=755", "size=65536k"]),
        .init(
            destination: "/dev/pts", type: "devpts", source: "devpts",
            options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]),
        .init(destination: "/dev/shm", type: "tmpfs", source: "shm", options: ["nosuid", "noexec", "nodev", "mode=1777", "size=2g"]),
        .init(destination: "/dev/mqueue", type: "mqueue", source: "mqueue", options: ["nosuid", "noexec", "nodev"]),
        .init(destination: "/sys", type: "none", source: "/sys", options: ["rbind", "nosuid", "noexec", "nodev", "ro"]),
    ]

    /// The OCI spec for one run. `mounts` are the plan's binds with their targets already
    /// resolved inside ROOT and their mountpoints created (`NativeEngine.prepareMounts`).
    static func makeSpec(
        plan: ExecutionPlan, mounts: [BindMount], proot: ProotInside?,
        devices: [DeviceSpec], runtime: Runtime, terminal: Bool, hostname: String,
        hostUID: UInt32, hostGID: UInt32, identity: RuncIdentity? = nil
    ) throws -> OCIRuntimeSpec {
        var specMounts = baseMounts
        for m in mounts {
            var st = stat()
            let isDirectory = stat(m.source, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
            // Files are bound directly (live, not copied as udocker's FileBind does).
            specMounts.append(
                .init(
                    destination: m.target, type: "none", source: m.source,
                    options: [isDirectory ? "rbind" : "bind", "nosuid", "nodev", m.readOnly ? "ro" : "rw"]))
        }
        var specDevices: [OCIRuntimeSpec.Device] = []
        for d in devices {
            if d.host == d.container {
                specDevices.append(
                    .init(
                        path: d.container, type: d.type, major: d.major, minor: d.minor,
                        fileMode: 0o666, uid: 0, gid: 0))
            } else {
                // Rootless runtimes bind device nodes from the same path: bind it ourselves.
                specMounts.append(.init(destination: d.container, type: "none", source: d.host, options: ["bind", "nosuid", "rw"]))
            }
        }

        var args = plan.arguments
        var env = plan.environment
        if let proot {
            args = proot.arguments(plan: plan)
            env = proot.environment(plan: plan)
            for (source, target) in proot.mounts {
                specMounts.append(.init(destination: target, type: "none", source: source, options: ["bind", "nosuid", "nodev", "ro"]))
            }
        } else if !args[0].contains("/") {
            args[0] = plan.executable
        }

        var namespaces = ["pid", "ipc", "uts", "mount", "user"].map(OCIRuntimeSpec.Namespace.init)
        if plan.isMPIRank && runtime.flavor != .runsc {
            // A rank of an MPI job sees real PIDs, like its peers and its launcher: MPI passes
            // PIDs between ranks, and a rank that is PID 1 in its own namespace takes every
            // peer's PID 1 for its own (Open MPI's shmem/mmap then skips mapping the peers'
            // segments and vader's sendi writes into unmapped memory: issue 25, docs/hpc.md).
            // No new PID namespace, and the host's /proc bound (a fresh proc needs one).
            namespaces.removeAll { $0.type == "pid" }
            if let proc = specMounts.firstIndex(where: { $0.destination == "/proc" }) {
                specMounts[proc] = .init(
                    destination: "/proc", type: "none", source: "/proc", options: ["rbind", "nosuid", "noexec", "nodev"])
            }
        }
        var uidMappings: [OCIRuntimeSpec.IDMapping]? = [.init(containerID: 0, hostID: hostUID, size: 1)]
        var gidMappings: [OCIRuntimeSpec.IDMapping]? = [.init(containerID: 0, hostID: hostGID, size: 1)]
        var user = OCIRuntimeSpec.User(uid: 0, gid: 0, additionalGids: nil)
        if let identity {
            uidMappings = identity.uidMappings; gidMappings = identity.gidMappings
            user = .init(uid: identity.uid, gid: identity.gid, additionalGids: nil)
        } else if runtime.flavor == .runsc {
            // gVisor does its own rootless setup (`--rootless`).
            namespaces.removeAll { $0.type == "user" }
            uidMappings = nil; gidMappings = nil
        }
        return OCIRuntimeSpec(
            process: .init(
                terminal: terminal, user: user, args: args, env: env,
                cwd: plan.cwd, capabilities: .init(all: capabilities), noNewPrivileges: true),
            root: .init(path: realpathOrSelf(plan.root), readonly: false),
            hostname: hostname,
            mounts: specMounts,
            linux: .init(
                uidMappings: uidMappings, gidMappings: gidMappings, namespaces: namespaces,
                devices: specDevices.isEmpty ? nil : specDevices,
                maskedPaths: maskedPaths, readonlyPaths: readonlyPaths))
    }

    static func realpathOrSelf(_ path: String) -> String {
        guard let r = realpath(path, nil) else { return path }
        defer { free(r) }
        return String(cString: r)
    }
}

/// R2/R3: the host's proot bound into the container at `/.udocker/bin/proot` and run there
/// with `-0` (or `-i uid:gid` for `--user`). A dynamically linked proot (Debian's) gets its
/// loader and libraries bound at `/.udocker/lib` and is started through that loader, so it
/// works whatever libc the container has.
struct ProotInside: Sendable {
    static let binary = "/.udocker/bin/proot"
    static let libDir = "/.udocker/lib"

    var mode: ExecutionMode
    var hostPath: String
    /// Container path of the host loader, when proot is dynamically linked.
    var loader: String?
    var killOnExit: Bool
    /// (host, container) binds.
    var mounts: [(String, String)]

    static func prepare(plan: ExecutionPlan, environment: EngineEnvironment) throws -> ProotInside {
        let proot = try ToolLocator(environment: environment).prootBinary()
        let host = proot.path
        let root = try RootDirectory(path: plan.root)
        var mounts: [(String, String)] = [(RuncEngine.realpathOrSelf(host), binary)]
        var loader: String?
        if let libs = try dynamicDependencies(host) {
            for lib in libs.libraries {
                mounts.append((lib.path, libDir + "/" + lib.name))
            }
            loader = libDir + "/" + PathName.basename(libs.interpreter)
            mounts.append((RuncEngine.realpathOrSelf(libs.interpreter), loader!))
        }
        for (_, target) in mounts {
            do { try root.makeMountpoint(target, directory: false) } catch {
                throw EngineError(.io, "\(plan.mode.rawValue): cannot create \(target) in the container: \(error)", cause: error)
            }
        }
        return ProotInside(
            mode: plan.mode, hostPath: host, loader: loader,
            killOnExit: proot.supportsKillOnExit, mounts: mounts)
    }

    func arguments(plan: ExecutionPlan) -> [String] {
        var argv: [String] = loader.map { [$0, "--library-path", Self.libDir, Self.binary] } ?? [Self.binary]
        if killOnExit { argv.append("--kill-on-exit") }
        argv += plan.user.isRoot && plan.user.gid == 0 ? ["-0"] : ["-i", "\(plan.user.uid):\(plan.user.gid)"]
        argv += ["-w", plan.cwd]
        argv.append(plan.arguments[0].contains("/") ? plan.arguments[0] : plan.executable)
        return argv + plan.arguments.dropFirst()
    }

    /// The plan's environment without image-set PRoot variables; R3 turns seccomp off.
    func environment(plan: ExecutionPlan) -> [String] {
        var env = plan.environment.filter { e in
            let key = String(e.prefix(while: { $0 != "=" }))
            return
                !(key.hasPrefix("PROOT_")
                && (plan.imageEnvironmentKeys.contains(key) || key == "PROOT_NO_SECCOMP" || key == "PROOT_TMP_DIR"))
        }
        if mode == .R3 { env.append("PROOT_NO_SECCOMP=1") }
        return env
    }

    /// nil for a static binary; else its ELF interpreter and libraries (from `ldd`).
    static func dynamicDependencies(_ path: String) throws -> (interpreter: String, libraries: [(name: String, path: String)])? {
        guard let interp = ELFInfo.interpreter(path) else { return nil }
        let run: Subprocess.Result
        do { run = try Subprocess.run("/usr/bin/ldd", [path], environment: ["PATH": "/usr/bin:/bin", "LC_ALL": "C"]) } catch {
            throw EngineError(.io, "proot \(path) is dynamically linked and ldd cannot be run: \(error)", cause: error)
        }
        let data = run.output
        var libs: [(name: String, path: String)] = []
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
            let f = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            if let arrow = f.firstIndex(of: "=>"), arrow == 1, arrow + 1 < f.count, f[arrow + 1].hasPrefix("/"),
                !f[0].contains("/")
            {
                libs.append((String(f[0]), RuncEngine.realpathOrSelf(String(f[arrow + 1]))))
            }
        }
        guard run.exitStatus == 0 else {
            throw EngineError(.io, "proot \(path) is dynamically linked and ldd failed on it")
        }
        return (interp, libs)
    }
}

/// Minimal ELF reading: the PT_INTERP of a 64-bit little-endian executable.
enum ELFInfo {
    static func interpreter(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        func read(at offset: Int, count: Int) -> [UInt8]? {
            var buf = [UInt8](repeating: 0, count: count)
            let n = buf.withUnsafeMutableBytes { pread(fd, $0.baseAddress, count, off_t(offset)) }
            return n == count ? buf : nil
        }
        func le(_ b: [UInt8], _ at: Int, _ size: Int) -> Int {
            var v = 0
            for i in (0..<size).reversed() { v = v << 8 | Int(b[at + i]) }
            return v
        }
        guard let h = read(at: 0, count: 64), h[0] == 0x7f, h[1] == 0x45, h[2] == 0x4c, h[3] == 0x46,
            h[4] == 2, h[5] == 1
        else { return nil }
        let phoff = le(h, 32, 8), phentsize = le(h, 54, 2), phnum = le(h, 56, 2)
        guard phentsize >= 56, phnum < 512 else { return nil }
        for i in 0..<phnum {
            guard let ph = read(at: phoff + i * phentsize, count: 56) else { return nil }
            if le(ph, 0, 4) == 3 {  // PT_INTERP
                let off = le(ph, 8, 8), size = le(ph, 32, 8)
                guard size > 1, size < 4096, let s = read(at: off, count: size) else { return nil }
                return String(decoding: s.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
        }
        return nil
    }
}
