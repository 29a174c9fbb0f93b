import Foundation
import Testing
@testable import Engines
import OCI
import UDockerSystem
#if canImport(Glibc)
import Glibc
#endif

/// Both engines on a busybox-static container (in-process; as root here, as `tester` in
/// UnprivilegedTests).
@Suite(.enabled(if: BusyboxContainer.busybox != nil))
struct EngineRunTests {
    static let kinds: [EngineKind] = (userNamespacesWork ? [.native] : []) + (prootAvailable ? [.proot] : [])

    @Test(arguments: kinds)
    func exitStatusAndOutput(kind: EngineKind) throws {
        let c = try BusyboxContainer()
        let r = try runEngine(kind, c, options(["sh", "-c", "echo hello; echo oops >&2; exit 42"]))
        #expect(r.status == 42)
        #expect(r.output == "hello\n")
        #expect(r.error == "oops\n")
        #expect(try runEngine(kind, c, options(["false"])).status == 1)
    }

    @Test(arguments: kinds)
    func environmentIsVisibleAndFiltered(kind: EngineKind) throws {
        let c = try BusyboxContainer()
        var config = ImageConfig.Config()
        config.env = ["FROM_IMAGE=img", "OVERRIDDEN=img"]
        let r = try runEngine(kind, c, options(["env"]) { $0.env = ["OVERRIDDEN=cli", "MYVAR"] }, config: config)
        let vars = Set(r.output.split(separator: "\n").map(String.init))
        #expect(r.status == 0, "\(r.error)")
        #expect(vars.contains("FROM_IMAGE=img"))
        #expect(vars.contains("OVERRIDDEN=cli"))
        #expect(vars.contains("MYVAR=from-host"))
        #expect(vars.contains("TERM=xterm"))
        #expect(vars.contains("container_uuid=\(c.id)"))
        #expect(vars.contains("PATH=/usr/sbin:/sbin:/usr/bin:/bin"))
        #expect(!r.output.contains("s3cr3t"))
        #expect(!vars.contains { $0.hasPrefix("LD_PRELOAD=") })
    }

    @Test(arguments: kinds)
    func workdirAndUid(kind: EngineKind) throws {
        let c = try BusyboxContainer()
        let r = try runEngine(kind, c, options(["sh", "-c", "pwd; id -u; id -g"]) { $0.workdir = "/data" })
        #expect(r.output == "/data\n0\n0\n", "\(r.error)")
        let u = try runEngine(kind, c, options(["sh", "-c", "id -u; id -g; id -un; echo $HOME; pwd"]) { $0.user = "1000:1000" })
        #expect(u.output == "1000\n1000\nuser\n/home/user\n/home/user\n", "\(u.error)")
    }

    @Test(arguments: kinds)
    func volumesDirectoryAndFile(kind: EngineKind) throws {
        let c = try BusyboxContainer()
        try c.write("file content\n", to: c.hostDir + "/single")
        try FileManager.default.createDirectory(atPath: c.hostDir + "/dir", withIntermediateDirectories: true)
        try c.write("in dir\n", to: c.hostDir + "/dir/a")
        let r = try runEngine(
            kind, c,
            options(["sh", "-c", "cat /mnt/d/a /etc/single.conf && touch /mnt/d/created"]) {
                $0.volumes = [c.hostDir + "/dir:/mnt/d", c.hostDir + "/single:/etc/single.conf"]
            })
        #expect(r.status == 0, "\(r.error)")
        #expect(r.output == "in dir\nfile content\n")
        var st = stat()
        #expect(stat(c.hostDir + "/dir/created", &st) == 0)
        #expect(st.st_uid == getuid())
    }

    @Test(arguments: kinds)
    func standardInputIsPassed(kind: EngineKind) throws {
        let c = try BusyboxContainer()
        let r = try runEngine(kind, c, options(["wc", "-l"]), input: "a\nb\nc\n")
        #expect(r.output.trimmingCharacters(in: .whitespacesAndNewlines) == "3", "\(r.error)")
    }

    /// The image's /etc/resolv.conf points at a host path: the bound file must land at that path
    /// *inside* ROOT, and the host file the link names must not be touched. A stand-in file is
    /// bound instead of the host's /etc/resolv.conf, so a write from inside (the tests may run as
    /// root) can never reach the real one.
    @Test(arguments: kinds)
    func symlinkedResolvConfStaysInside(kind: EngineKind) throws {
        let c = try BusyboxContainer()
        let victim = c.hostDir + "/victim"
        try c.write("victim\n", to: victim)
        let standIn = c.hostDir + "/resolv.conf"
        try c.write("nameserver 192.0.2.53\n", to: standIn)
        try FileManager.default.createSymbolicLink(atPath: c.root + "/etc/resolv.conf", withDestinationPath: victim)
        var o = options(["sh", "-c", "cat /etc/resolv.conf; echo changed > /etc/resolv.conf 2>/dev/null; true"])
        o.nosysdirs = true
        o.volumes = ["\(standIn):/etc/resolv.conf"]
        let r = try runEngine(kind, c, o)
        #expect(r.status == 0, "\(r.error)")
        #expect(r.output == "nameserver 192.0.2.53\n")
        #expect(try String(contentsOfFile: victim, encoding: .utf8) == "victim\n")
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: c.root + "/etc/resolv.conf") == victim)
    }

    @Test(arguments: kinds)
    func commandNotFoundFailsBeforeStarting(kind: EngineKind) throws {
        let c = try BusyboxContainer()
        #expect(throws: EngineError(.invalidArgument, "command not found or has no execute bit set: nothere")) {
            _ = try runEngine(kind, c, options(["nothere"]))
        }
    }

    @Test(arguments: kinds)
    func killedBySignal(kind: EngineKind) throws {
        let c = try BusyboxContainer()
        let r = try runEngine(kind, c, options(["sh", "-c", "kill -TERM $$; sleep 5"]))
        // N1 reports 128+signal; Debian's proot itself turns a killed guest into 255.
        #expect(r.status == (kind == .native ? 128 + SIGTERM : 255))
    }
}

@Suite(.enabled(if: BusyboxContainer.busybox != nil && userNamespacesWork))
struct NativeEngineTests {
    @Test func noFileDescriptorLeaks() throws {
        let c = try BusyboxContainer()
        let leaked = open("/etc/hostname", O_RDONLY)  // deliberately without O_CLOEXEC
        defer { close(leaked) }
        let r = try runEngine(.native, c, options(["ls", "/proc/self/fd"]))
        let fds = Set(r.output.split(whereSeparator: { $0 == "\n" || $0 == " " }).map(String.init))
        #expect(fds == ["0", "1", "2", "3"], "\(r.output)")  // 3 = ls's own directory handle
    }

    @Test func hostIsNotVisible() throws {
        let c = try BusyboxContainer()
        let r = try runEngine(.native, c, options(["ls", "/"]))
        let entries = Set(r.output.split(whereSeparator: { $0 == "\n" || $0 == " " }).map(String.init))
        #expect(entries.contains("bin") && !entries.contains("work") && !entries.contains("var"), "\(r.output)")
        // The container's mount table has only the container's mounts.
        let m = try runEngine(.native, c, options(["cat", "/proc/self/mountinfo"]))
        #expect(!m.output.contains(" /work "))
    }

    @Test func userFromImageAndSysdirs() throws {
        let c = try BusyboxContainer()
        var config = ImageConfig.Config()
        config.user = "user"
        config.workingDir = "/tmp"
        let r = try runEngine(
            .native, c, options(["sh", "-c", "id -u; pwd; test -c /dev/null && echo devnull; test -d /proc/self && echo proc"]),
            config: config)
        #expect(r.output == "1000\n/tmp\ndevnull\nproc\n", "\(r.error)")
    }

    @Test func bannerGoesToStandardError() throws {
        let c = try BusyboxContainer()
        var o = options(["true"]); o.noBanner = false
        let r = try runEngine(.native, c, o, environment: c.environment(verbosity: 3))
        #expect(r.output.isEmpty)
        // The banner is written by this process (not the child) to its own stderr.
        #expect(r.status == 0)
    }

    @Test func temporaryFilesAreRemoved() throws {
        let c = try BusyboxContainer()
        _ = try runEngine(.native, c, options(["true"]) { $0.user = "4242:4242" })
        #expect(try FileManager.default.contentsOfDirectory(atPath: c.tmpDir).isEmpty)
    }

    @Test func volumeTypeMismatchIsAnError() throws {
        let c = try BusyboxContainer()
        try c.write("x", to: c.hostDir + "/f")
        #expect(throws: EngineError.self) {
            _ = try runEngine(.native, c, options(["true"]) { $0.volumes = [c.hostDir + "/f:/data"] })
        }
    }

    @Test func nestedVolumes() throws {
        let c = try BusyboxContainer()
        try FileManager.default.createDirectory(atPath: c.hostDir + "/outer/inner", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: c.hostDir + "/other", withIntermediateDirectories: true)
        try c.write("nested\n", to: c.hostDir + "/other/n")
        // Given child first: mounted after its parent.
        let r = try runEngine(
            .native, c,
            options(["cat", "/o/inner/n"]) {
                $0.volumes = [c.hostDir + "/other:/o/inner", c.hostDir + "/outer:/o"]
            })
        #expect(r.output == "nested\n", "\(r.error)")
    }
}

@Suite struct SelectorTests {
    /// The host's proot as the engine prepares it (path, --kill-on-exit known).
    static let hostProot = PRootBinary(path: "/usr/bin/proot", supportsKillOnExit: PRootBinary.knowsKillOnExit("/usr/bin/proot"))

    @Test func modes() throws {
        let env = EngineEnvironment(tmpDir: "/tmp", binDir: "/nonexistent")
        #expect(try EngineSelector.engine(for: .N1, environment: env).mode == .N1)
        #expect(try EngineSelector.engine(for: .P2, environment: env).mode == .P2)
        // Every mode has an engine now; each reports its own mode.
        for m in ExecutionMode.allCases {
            #expect(try EngineSelector.engine(for: m, environment: env).mode == m)
        }
        #expect(EngineSelector.defaultMode(environment: env) == (userNamespacesWork ? .N1 : .P1))
        #expect(ExecutionMode(parsing: "p2") == .P2)
    }

    @Test func prootLocation() throws {
        let c = try BusyboxContainer()
        var env = c.environment()
        env.hostEnvironment["PATH"] = "/nonexistent"
        env.prootExecutable = nil
        #expect(throws: EngineError.self) { _ = try PRootEngine(environment: env).locateProot() }
        try FileManager.default.createDirectory(atPath: env.binDir, withIntermediateDirectories: true)
        try c.write("#!/bin/sh\n", to: env.binDir + "/proot-x86_64")
        chmod(env.binDir + "/proot-x86_64", 0o755)
        if ToolLocator.udockerArch == "x86_64" {
            #expect(try PRootEngine(environment: env).locateProot() == env.binDir + "/proot-x86_64")
        }
        env.prootExecutable = "/usr/bin/proot"
        if prootAvailable { #expect(try PRootEngine(environment: env).locateProot() == "/usr/bin/proot") }
        env.prootExecutable = "/nonexistent/proot"
        #expect(throws: EngineError.self) { _ = try PRootEngine(environment: env).locateProot() }
    }

    @Test func prootCommandLine() throws {
        let c = try BusyboxContainer()
        var config = ImageConfig.Config()
        config.env = ["LD_PRELOAD=/evil.so", "PROOT_LOADER=/x"]
        let env = c.environment()
        let o = options(["echo", "x"]) {
            $0.user = "1000:1000"; $0.kernel = "5.0.0"; $0.nosysdirs = true
        }
        let plan = try ExecutionPlan.make(container: c.instance(config: config), options: o, environment: env, mode: .P2)
        defer { plan.removeTemporaryFiles() }
        let (argv, envp, dropped) = PRootEngine(mode: .P2, environment: env).commandLine(proot: Self.hostProot, plan: plan)
        #expect(Array(argv.suffix(8)) == ["-k", "5.0.0", "-r", c.root, "-w", "/home/user", "/bin/echo", "x"])
        #expect(argv.contains("-i") && argv.contains("1000:1000") && !argv.contains("-0"))
        #expect(argv.last == "x")
        #expect(Set(dropped) == ["LD_PRELOAD", "PROOT_LOADER"])
        #expect(envp.contains("PROOT_NO_SECCOMP=1") && envp.contains("PROOT_TMP_DIR=\(c.tmpDir)"))
        #expect(!envp.contains { $0.hasPrefix("LD_PRELOAD=") })
        let root = try ExecutionPlan.make(container: c.instance(), options: options(["true"]), environment: env, mode: .P1)
        defer { root.removeTemporaryFiles() }
        let (argv1, envp1, _) = PRootEngine(mode: .P1, environment: env).commandLine(proot: Self.hostProot, plan: root)
        #expect(argv1.contains("-0") && !argv1.contains("-k"))
        #expect(argv1.contains("-b") && argv1.contains("/dev:/dev"))
        #expect(!envp1.contains { $0.hasPrefix("PROOT_NO_SECCOMP=") })
    }
}

@Suite(.enabled(if: BusyboxContainer.busybox != nil && userNamespacesWork))
struct NativeEngineExtraTests {
    @Test func cpuset() throws {
        let c = try BusyboxContainer()
        let r = try runEngine(
            .native, c,
            options(["sh", "-c", "while read k v; do [ \"$k\" = Cpus_allowed_list: ] && echo $v; done < /proc/self/status"]) {
                $0.cpusetCpus = "0"
            })
        #expect(r.output == "0\n", "\(r.error)")
    }

    @Test func startErrorNamesAWorkingMode() {
        let e = NativeEngine.startError(
            .init(errno: EPERM, step: "unshare(CLONE_NEWUSER|CLONE_NEWNS)"),
            container: ContainerInstance(id: "abc", directory: "/x", names: ["web"]))
        #expect(e.kind == .cannotStart)
        #expect(e.description.hasPrefix("N1 cannot start: "))
        #expect(e.description.hasSuffix("; use P1 (udocker setup --execmode=P1 web)"))
        let m = NativeEngine.startError(
            .init(errno: EPERM, step: "mount /proc on /proc"),
            container: ContainerInstance(id: "abc", directory: "/x"))
        #expect(m.description == "N1: mount /proc on /proc: Operation not permitted")
        #expect(m.exitStatus == nil)  // the kind decides: 2 (UDocker.exitStatus, ExitStatusTests)
    }

    /// A signal sent to udocker (kill, not the terminal) is forwarded to the command.
    @Test func signalsAreForwarded() throws {
        let c = try BusyboxContainer()
        let ready = c.hostDir + "/ready"
        let sender = Thread {
            for _ in 0..<200 where !FileManager.default.fileExists(atPath: ready) { usleep(20_000) }
            usleep(200_000)
            kill(getpid(), SIGUSR1)
        }
        try engineLock.withLock {
            sender.start()
            let r = try runEngineUnlocked(
                .native, c,
                options(["sh", "-c", "trap 'echo got; exit 7' USR1; touch /vol/ready; while :; do sleep 0.05; done"]) {
                    $0.volumes = [c.hostDir + ":/vol"]
                })
            #expect(r.status == 7)
            #expect(r.output == "got\n")
        }
    }
}
