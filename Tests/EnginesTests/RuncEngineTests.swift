import Foundation
import Testing
@testable import Engines
import OCI
import UDockerSystem
#if canImport(Glibc)
import Glibc
#endif

let runcPath: String? = ["/usr/sbin/runc", "/usr/bin/runc", "/usr/local/sbin/runc", "/usr/local/bin/runc"]
    .first { FileManager.default.isExecutableFile(atPath: $0) }

/// Which engine a tester-side run uses.
enum RSMode: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case R1, R2, R3, S1
    var testDescription: String { rawValue }
    var mode: ExecutionMode { ExecutionMode(rawValue: rawValue)! }
}

/// A busybox container with the extra applets these tests use, and a stand-in `apptainer`.
func rsContainer() throws -> BusyboxContainer {
    let c = try BusyboxContainer()
    for a in ["yes", "grep", "sha256sum", "seq", "tr", "cut"] {
        try? FileManager.default.createSymbolicLink(atPath: c.root + "/bin/" + a, withDestinationPath: "busybox")
    }
    try FileManager.default.createDirectory(atPath: c.dir.path + "/standin", withIntermediateDirectories: true)
    try StandIn.script.write(toFile: c.dir.path + "/standin/apptainer", atomically: false, encoding: .utf8)
    chmod(c.dir.path + "/standin", 0o777)
    chmod(c.dir.path + "/standin/apptainer", 0o755)
    return c
}

enum StandIn {
    /// A stand-in for `apptainer` (none is packaged for Debian 12): logs its argv and the
    /// APPTAINERENV_/SINGULARITYENV_ variables to `apptainer.log` beside itself, then runs the
    /// command in the root with util-linux `unshare` (user + mount namespaces), applying the
    /// `-B`/`--home` binds, `--pwd`, and the prefixed environment (prefix stripped, nothing else).
    static let script = #"""
        #!/bin/bash
        log="$(dirname "$0")/apptainer.log"
        if [ "$1" = exec ] && [ "$2" = --help ]; then
            echo "      --fakeroot     run container with the appearance of running as root"; exit 0
        fi
        { for a in "$@"; do printf 'ARG %s\n' "$a"; done
          env | LC_ALL=C sort | grep -E '^(APPTAINERENV_|SINGULARITYENV_)' | sed 's/^/ENV /'; } > "$log"
        while [ $# -gt 0 ]; do case "$1" in
            --quiet|--silent|--debug|-v) shift;; exec) shift; break;;
            *) echo "stand-in: unexpected $1" >&2; exit 255;; esac; done
        pwd=/; binds=()
        while [ $# -gt 0 ]; do case "$1" in
            -w|-u|--fakeroot) shift;; --pwd) pwd=$2; shift 2;; -B|--home) binds+=("$2"); shift 2;;
            -*) echo "stand-in: unexpected $1" >&2; exit 255;; *) break;; esac; done
        root=$1; shift
        envs=()
        while IFS= read -r -d '' kv; do case "$kv" in
            APPTAINERENV_*) envs+=("${kv#APPTAINERENV_}");; SINGULARITYENV_*) envs+=("${kv#SINGULARITYENV_}");; esac
        done < <(env -0)
        exec /usr/bin/unshare --user --map-root-user --mount /bin/bash -c '
          root=$1 pwd=$2 nb=$3; shift 3
          for d in /proc /dev /sys; do mount --rbind "$d" "$root$d" || exit 255; done
          while [ "$nb" -gt 0 ]; do mount --rbind "${1%%:*}" "$root${1#*:}" || exit 255; shift; nb=$((nb-1)); done
          ne=$1; shift; envs=(); while [ "$ne" -gt 0 ]; do envs+=("$1"); shift; ne=$((ne-1)); done
          exec /usr/sbin/chroot "$root" /bin/sh -c "cd \"\$0\" && exec env -i \"\$@\"" "$pwd" "${envs[@]}" "$@"
        ' standin "$root" "$pwd" "${#binds[@]}" "${binds[@]}" "${#envs[@]}" "${envs[@]}" "$@"
        """#
}

/// Runs an R or S engine with stdout/stderr captured in files and stdin from `input`.
func runRS(
    _ m: RSMode, _ c: BusyboxContainer, _ options: RunOptions, config: ImageConfig.Config? = nil,
    input: String? = nil, host: [String: String] = [:], devices: [String] = []
) throws -> RunResult {
    try withCapturedIO(c, input: input) { io in
        var hostEnv = [
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "TERM": "xterm", "HOME": "/tmp", "USER": "tester",
            "SECRET_TOKEN": "s3cr3t",
        ]
        hostEnv.merge(host) { $1 }
        var env = c.environment(verbosity: 2, host: hostEnv)
        env.singularityExecutable = c.dir.path + "/standin/apptainer"
        let engine: any ExecutionEngine =
            m == .S1
            ? SingularityEngine(environment: env, io: io)
            : RuncEngine(mode: m.mode, environment: env, io: io, devices: devices)
        return try engine.run(c.instance(config: config), options: options)
    }
}

// MARK: - tests that need no namespaces

@Suite struct RuncSpecTests {
    @Test func missingRuntimeNamesTheTool() throws {
        let c = try BusyboxContainer()
        var env = c.environment()
        env.hostEnvironment["PATH"] = "/nonexistent"
        let engine = RuncEngine(mode: .R1, environment: env)
        do {
            _ = try engine.run(c.instance(), options: options(["true"]))
            Issue.record("expected an error")
        } catch let e as EngineError {
            #expect(e.kind == .toolNotFound)
            #expect(e.exitStatus == nil)  // the kind decides: 1 (UDocker.exitStatus, ExitStatusTests)
            #expect(e.message.contains("runc not found") && e.message.contains("apt-get install runc"), "\(e.message)")
        }
        env.runcExecutable = "/nonexistent/runc"
        #expect(throws: EngineError.self) { _ = try RuncEngine(environment: env).locateRuntime() }
        let s = SingularityEngine(environment: env)
        #expect { _ = try s.locateTool() } throws: { ($0 as? EngineError)?.message.contains("apptainer") == true }
    }

    @Test func runtimeSearchOrder() throws {
        let c = try BusyboxContainer()
        let bin = c.dir.path + "/bin"
        try FileManager.default.createDirectory(atPath: bin, withIntermediateDirectories: true)
        for n in ["crun", "runc"] {
            try "#!/bin/sh\n".write(toFile: bin + "/" + n, atomically: false, encoding: .utf8)
            chmod(bin + "/" + n, 0o755)
        }
        var env = c.environment()
        env.hostEnvironment["PATH"] = "/nonexistent"
        #expect(try RuncEngine(environment: env).locateRuntime() == .init(path: bin + "/runc"))
        env.runcExecutable = bin + "/crun"
        let r = try RuncEngine(environment: env).locateRuntime()
        #expect(r.path == bin + "/crun" && r.flavor == .crun)
        #expect(RuncEngine.Runtime(path: "/x/runsc").flavor == .runsc)
        env.runcExecutable = nil
        env.hostEnvironment["PATH"] = bin
        #expect(try RuncEngine(environment: env).locateRuntime().path == bin + "/runc")
    }

    @Test func specFromPlan() throws {
        let c = try rsContainer()
        try "x".write(toFile: c.hostDir + "/file", atomically: false, encoding: .utf8)
        var env = c.environment()
        env.sysdirs = RuncEngine.sysdirs(from: env.sysdirs)
        #expect(env.sysdirs == ["/etc/resolv.conf", "/etc/host.conf", "/etc/hosts"])
        let plan = try ExecutionPlan.make(
            container: c.instance(),
            options: options(["sh", "-c", "true"]) {
                $0.volumes = [c.hostDir + ":/vol", c.hostDir + "/file:/etc/file"]; $0.workdir = "/data"
            }, environment: env, mode: .R1)
        defer { plan.removeTemporaryFiles() }
        let mounts = try MountPlan.resolve(plan, messages: Messages(verbosity: 0))
        let devices = [try DeviceSpec.parse("/dev/null:/dev/mynull"), try DeviceSpec.parse("/dev/zero")]
        #expect(devices[1].major == 1 && devices[1].minor == 5 && devices[1].type == "c")  // st_rdev, not st_dev
        let spec = try RuncEngine.makeSpec(
            plan: plan, mounts: mounts, proot: nil, devices: devices,
            runtime: .init(path: "/usr/sbin/runc"), terminal: false, hostname: "h.example",
            hostUID: 1234, hostGID: 5678)
        #expect(spec.process.terminal == false)
        #expect(spec.process.args == ["/bin/sh", "-c", "true"])
        #expect(spec.process.cwd == "/data")
        #expect(spec.process.user == .init(uid: 0, gid: 0, additionalGids: nil))
        #expect(spec.process.env.contains("container_execmode=R1"))
        #expect(!spec.process.env.contains { $0.hasPrefix("SECRET_TOKEN") })
        #expect(spec.linux.uidMappings == [.init(containerID: 0, hostID: 1234, size: 1)])
        #expect(spec.linux.gidMappings == [.init(containerID: 0, hostID: 5678, size: 1)])
        let ns = spec.linux.namespaces.map(\.type)
        #expect(!ns.contains("network") && !ns.contains("cgroup") && ns.contains("user") && ns.contains("mount"))
        #expect(!spec.mounts.contains { $0.destination.hasPrefix("/sys/fs/cgroup") || $0.type == "cgroup" })
        #expect(spec.mounts.first { $0.destination == "/dev/shm" }?.options?.contains("size=2g") == true)
        #expect(spec.mounts.contains { $0.destination == "/vol" && $0.source == c.hostDir && $0.options?.first == "rbind" })
        #expect(spec.mounts.contains { $0.destination == "/etc/file" && $0.source == c.hostDir + "/file" && $0.options?.first == "bind" })
        #expect(spec.mounts.contains { $0.destination == "/etc/passwd" })
        #expect(spec.mounts.contains { $0.destination == "/dev/mynull" && $0.source == "/dev/null" })
        #expect(spec.linux.devices == [.init(path: "/dev/zero", type: "c", major: 1, minor: 5, fileMode: 0o666, uid: 0, gid: 0)])
        #expect(spec.hostname == "h.example")
        #expect(spec.root.path == RuncEngine.realpathOrSelf(c.root))
        #expect(FileManager.default.fileExists(atPath: c.root + "/etc/file"))  // mountpoint created in ROOT
        let json = try JSONSerialization.jsonObject(with: spec.encoded()) as? [String: Any]
        #expect(json?["ociVersion"] as? String == "1.0.2")

        let runsc = try RuncEngine.makeSpec(
            plan: plan, mounts: mounts, proot: nil, devices: [],
            runtime: .init(path: "/usr/bin/runsc"), terminal: true, hostname: "h",
            hostUID: 1, hostGID: 1)
        #expect(ns.contains("pid") && spec.mounts.first { $0.destination == "/proc" }?.type == "proc")
        // A rank of an MPI job keeps the host's PIDs (its peers' segments are told apart by PID).
        var rank = plan
        rank.isMPIRank = true
        let rankSpec = try RuncEngine.makeSpec(
            plan: rank, mounts: mounts, proot: nil, devices: [],
            runtime: .init(path: "/usr/sbin/runc"), terminal: false, hostname: "h", hostUID: 1234, hostGID: 5678)
        #expect(!rankSpec.linux.namespaces.contains { $0.type == "pid" } && rankSpec.linux.namespaces.contains { $0.type == "user" })
        let proc = rankSpec.mounts.filter { $0.destination == "/proc" }
        #expect(proc.count == 1 && proc.first?.source == "/proc" && proc.first?.options?.first == "rbind", "\(proc)")

        #expect(runsc.linux.uidMappings == nil && !runsc.linux.namespaces.contains { $0.type == "user" })
        #expect(runsc.process.terminal)

        // As you (RuncIdentity): container <uid> -> outer 0 (you), container root -> outer 1 (a subuid).
        let identity = RuncIdentity(uid: 1234, gid: 5678, subUID: 100000, subGID: 200000, unshare: "/usr/bin/unshare")
        let asYou = try RuncEngine.makeSpec(
            plan: plan, mounts: mounts, proot: nil, devices: [],
            runtime: .init(path: "/usr/sbin/runc"), terminal: false, hostname: "h",
            hostUID: 1234, hostGID: 5678, identity: identity)
        #expect(asYou.process.user == .init(uid: 1234, gid: 5678, additionalGids: nil))
        #expect(asYou.linux.uidMappings == [.init(containerID: 0, hostID: 1, size: 1), .init(containerID: 1234, hostID: 0, size: 1)])
        #expect(asYou.linux.gidMappings == [.init(containerID: 0, hostID: 1, size: 1), .init(containerID: 5678, hostID: 0, size: 1)])
        #expect(
            identity.wrapper == [
                "/usr/bin/unshare", "--mount", "--map-root-user", "--map-users=100000,1,1", "--map-groups=200000,1,1", "--",
            ])
    }

    @Test func subordinateIDRange() throws {
        let c = try rsContainer()
        let dir = c.hostDir
        let file = dir + "/subuid"
        let uid = getuid()
        try "other:5000:10\n\(uid):0:10\n\(uid):300000:0\n\(uid):400000:65536\n".write(toFile: file, atomically: false, encoding: .utf8)
        // A range that starts at 0 (it would map container root onto host root) or is empty is skipped.
        #expect(RuncIdentity.firstSubordinateID(file, uid: uid) == 400000)
        #expect(RuncIdentity.firstSubordinateID(dir + "/missing", uid: uid) == nil)
        #expect(RuncIdentity.unavailableReason(environment: ["PATH": dir], uid: 1001)?.contains("unshare not found") == true)
    }

    @Test(.enabled(if: runcPath != nil, "runc is not installed (apt-get install runc)"))
    func volumeOntoRuntimeMountIsRefused() throws {
        let runc = try #require(runcPath)
        let c = try rsContainer()
        var env = c.environment()
        env.runcExecutable = runc
        #expect {
            _ = try RuncEngine(environment: env).run(c.instance(), options: options(["true"]) { $0.volumes = ["/tmp:/proc"] })
        } throws: { ($0 as? EngineError)?.message.contains("cannot replace /proc") == true }
    }

    @Test func nestingDetection() {
        #expect(EngineNesting.prootTracer(status: "Name:\tx\nTracerPid:\t0\n", environment: [:]) == nil)
        // Traced by our own parent (whatever it is) with PRoot's variables set: refused.
        let status = "TracerPid:\t\(getppid())\n"
        #expect(EngineNesting.prootTracer(status: status, environment: ["PROOT_TMP_DIR": "/tmp"]) != nil)
        let e = CapabilityNotice.nestedPRoot(.P1, tracer: "proot, pid 1").error
        #expect(e.message.contains("PRoot inside PRoot") && e.kind == .cannotStart)
    }

    @Test func selectorRegistersRAndS() throws {
        let env = EngineEnvironment(tmpDir: "/tmp", binDir: "/nonexistent")
        for m in [ExecutionMode.R1, .R2, .R3, .S1, .P1] {
            #expect(try EngineSelector.engine(for: m, environment: env).mode == m)
            #expect(m.isImplemented)
        }
    }

    @Test func singularityCommandLine() throws {
        let c = try rsContainer()
        let tool = SingularityEngine.Tool(path: "/opt/apptainer", fromBinDir: false)
        var env = c.environment(verbosity: 3)
        env.sysdirs = SingularityEngine.sysdirs(from: env.sysdirs)
        #expect(env.sysdirs == ["/etc/resolv.conf", "/etc/host.conf", "/lib/modules"])
        let opts = options(["echo", "hi"]) {
            $0.volumes = [c.hostDir + ":/vol"]; $0.env = ["FOO=bar"]; $0.workdir = "/data"
        }
        let plan = try ExecutionPlan.make(container: c.instance(), options: opts, environment: env, mode: .S1)
        defer { plan.removeTemporaryFiles() }
        let mounts = try MountPlan.resolve(plan, messages: Messages(verbosity: 0))
        let engine = SingularityEngine(environment: env)
        let argv = engine.commandLine(tool: tool, plan: plan, mounts: mounts, fakeroot: true, options: opts)
        let binds = mounts.flatMap { ["-B", "\($0.source):\($0.target)"] }
        #expect(
            argv == ["/opt/apptainer", "--quiet", "exec", "-w", "--fakeroot", "--pwd", "/data"] + binds
                + [
                    "--home", "\(c.root)/root:/root", "-B", "\(c.root)/tmp:/tmp", "-B", "\(c.root)/var/tmp:/var/tmp",
                    c.root, "/bin/echo", "hi",
                ])
        #expect(binds.contains("\(c.hostDir):/vol"))
        // -v host:cont:ro becomes -B host:cont:ro
        let roOptions = options(["true"]) { $0.volumes = [c.hostDir + ":/vol:ro"] }
        let roPlan = try ExecutionPlan.make(container: c.instance(), options: roOptions, environment: env, mode: .S1)
        defer { roPlan.removeTemporaryFiles() }
        let roArgv = engine.commandLine(
            tool: tool, plan: roPlan, mounts: try MountPlan.resolve(roPlan, messages: Messages(verbosity: 0)),
            fakeroot: true, options: roOptions)
        #expect(roArgv.contains("\(c.hostDir):/vol:ro"), "\(roArgv)")
        let e = engine.toolEnvironment(tool: tool, plan: plan)
        #expect(e.contains("APPTAINERENV_FOO=bar") && !e.contains { $0.hasPrefix("SINGULARITYENV_") })
        let s = engine.toolEnvironment(tool: .init(path: "/usr/bin/singularity", fromBinDir: true), plan: plan)
        #expect(s.contains("SINGULARITYENV_FOO=bar") && !s.contains { $0.hasPrefix("APPTAINERENV_") })
        let fromBin = engine.commandLine(
            tool: .init(path: c.dir.path + "/bin/apptainer", fromBinDir: true), plan: plan,
            mounts: mounts, fakeroot: false, options: opts)
        #expect(fromBin[2...4] == ["exec", "-w", "-u"] && !fromBin.contains("--fakeroot"))
    }
}

// MARK: - end to end as an unprivileged user

@Suite struct RuncAsTesterLauncher {
    static let inner = ProcessInfo.processInfo.environment["UDOCKER_RS_AS_TESTER"] == "1"

    /// As root: re-executes this test binary as `tester` with only the tester-side R/S tests.
    @Test(.enabled(if: getuid() == 0 && (unprivilegedUser != nil) && !inner && BusyboxContainer.busybox != nil))
    func runsRAndSAsTester() throws {
        let (status, output) = runAsUnprivileged(flag: "UDOCKER_RS_AS_TESTER", filter: "RSTester")
        #expect(status == 0, "\(output)")
        #expect(
            (output.contains("RSTester") || output.contains("rsAs")) && !output.contains("skipped") && output.contains("passed"),
            "\(output)")
    }
}

let rsTesterEnabled = (RuncAsTesterLauncher.inner || getuid() != 0) && BusyboxContainer.busybox != nil && userNamespacesWork
let rsModes: [RSMode] =
    (runcPath != nil ? [.R1] + (prootAvailable ? [.R2, .R3] : []) : [])
    + (FileManager.default.isExecutableFile(atPath: "/usr/bin/unshare") ? [.S1] : [])

@Suite(.enabled(if: rsTesterEnabled)) struct RSTester {
    @Test(arguments: rsModes)
    func commandStatusEnvWorkdir(_ m: RSMode) throws {
        let c = try rsContainer()
        let r = try runRS(
            m, c,
            options(["sh", "-c", "echo \"$FOO $container_execmode $SECRET_TOKEN.\"; pwd; exit 42"]) {
                $0.env = ["FOO=bar"]; $0.workdir = "/data"
            })
        #expect(r.status == 42, "\(r.error)")
        #expect(r.output == "bar \(m.rawValue) .\n/data\n", "\(r.error)")
        #expect(try runRS(m, c, options(["true"])).status == 0)
        #expect(try runRS(m, c, options(["false"])).status == 1)
        if m == .S1 {
            let log = try String(contentsOfFile: c.dir.path + "/standin/apptainer.log", encoding: .utf8)
            #expect(log.contains("ENV APPTAINERENV_container_execmode=S1\n"), "\(log)")
            #expect(!log.contains("SINGULARITYENV_"))
        }
    }

    @Test(arguments: rsModes)
    func volumesDirectoryAndFile(_ m: RSMode) throws {
        let c = try rsContainer()
        try "dir-content\n".write(toFile: c.hostDir + "/in-dir", atomically: false, encoding: .utf8)
        try "file-content\n".write(toFile: c.hostDir + "/single", atomically: false, encoding: .utf8)
        chmod(c.hostDir + "/single", 0o666)
        let r = try runRS(
            m, c,
            options(["sh", "-c", "cat /vol/in-dir /etc/single; touch /vol/created; echo more >> /etc/single"]) {
                $0.volumes = [c.hostDir + ":/vol", c.hostDir + "/single:/etc/single"]
            })
        #expect(r.status == 0, "\(r.error)")
        #expect(r.output == "dir-content\nfile-content\n", "\(r.error)")
        var st = stat()
        #expect(stat(c.hostDir + "/created", &st) == 0 && st.st_uid == getuid())
        // The file bind is live (not a copy, as udocker's FileBind is).
        #expect(try String(contentsOfFile: c.hostDir + "/single", encoding: .utf8) == "file-content\nmore\n")
    }

    @Test(arguments: rsModes)
    func userOption(_ m: RSMode) throws {
        let c = try rsContainer()
        let r = try runRS(m, c, options(["sh", "-c", "id -u; id -g"]) { $0.user = "1000:1000" })
        #expect(r.status == 0, "\(r.error)")
        switch m {
        case .R1:
            #expect(r.output == "0\n0\n")  // with a warning on our stderr (not the command's)
        case .R2, .R3:
            #expect(r.output == "1000\n1000\n", "\(r.error)")
        case .S1:
            let log = try String(contentsOfFile: c.dir.path + "/standin/apptainer.log", encoding: .utf8)
            #expect(!log.contains("ARG --fakeroot"))
        }
        if m == .S1 {
            // Root with subordinate ids on the host and a tool that knows --fakeroot.
            _ = try runRS(m, c, options(["true"]))
            let log = try String(contentsOfFile: c.dir.path + "/standin/apptainer.log", encoding: .utf8)
            #expect(log.contains("ARG --fakeroot") == SingularityEngine.hostUserHasSubordinateIDs(), "\(log)")
        }
    }

    @Test(arguments: rsModes)
    func hostauth(_ m: RSMode) throws {
        let c = try rsContainer()
        let me = String(cString: getpwuid(getuid())!.pointee.pw_name)
        let r = try runRS(
            m, c, options(["sh", "-c", "grep -c '^\(me):' /etc/passwd; grep -c '^user:' /etc/passwd"]) { $0.hostauth = true })
        #expect(r.output == "1\n0\n", "\(r.error)")
    }

    @Test(arguments: rsModes)
    func stdinAndShebangScript(_ m: RSMode) throws {
        let c = try rsContainer()
        let r = try runRS(m, c, options(["sh", "-c", "tr a-z A-Z"]), input: "hello\nworld\n")
        #expect(r.output == "HELLO\nWORLD\n", "\(r.error)")
        try "#!/bin/sh\necho \"script $1 $0\"\nexit 3\n".write(toFile: c.root + "/data/script.sh", atomically: false, encoding: .utf8)
        chmod(c.root + "/data/script.sh", 0o755)
        let s = try runRS(m, c, options(["/data/script.sh", "arg1"]))
        #expect(s.status == 3, "\(s.error)")
        #expect(s.output == "script arg1 /data/script.sh\n", "\(s.error)")
        let w = try runRS(m, c, options(["./script.sh", "rel"]) { $0.workdir = "/data" })
        #expect(w.output.hasPrefix("script rel "), "\(w.error)")
    }

    /// 10 MiB to stdout without a tty: complete and in order.
    @Test(arguments: rsModes)
    func bigOutput(_ m: RSMode) throws {
        let c = try rsContainer()
        let r = try runRS(m, c, options(["sh", "-c", "seq 1 1800000 | head -c 10485760; echo end >&2"]))
        #expect(r.status == 0)
        var expected = ""
        expected.reserveCapacity(13 << 20)
        for i in 1...1_800_000 { expected += "\(i)\n" }
        let want = Data(expected.utf8).prefix(10_485_760)
        #expect(r.output.utf8.count == 10_485_760, "\(r.error.suffix(500))")
        #expect(Data(r.output.utf8) == want)
        #expect(r.error.hasSuffix("end\n"))
    }

    @Test(.enabled(if: runcPath != nil, "runc is not installed (apt-get install runc)"))
    func concurrentRunsOfOneContainer() throws {
        let c = try rsContainer()
        let results = Mutex2<[Int: RunResult]>([:])
        let errors = Mutex2<[String]>([])
        DispatchQueue.concurrentPerform(iterations: 2) { i in
            do {
                let r = try runRS(.R1, c, options(["sh", "-c", "sleep 1; echo run\(i); exit \(i + 10)"]))
                results.withLock { $0[i] = r }
            } catch { errors.withLock { $0.append("\(error)") } }
        }
        #expect(errors.withLock { $0 } == [])
        let r = results.withLock { $0 }
        #expect(r[0]?.status == 10 && r[0]?.output == "run0\n", "\(String(describing: r[0]))")
        #expect(r[1]?.status == 11 && r[1]?.output == "run1\n", "\(String(describing: r[1]))")
        // Nothing left behind in the temporary directory.
        let left = try FileManager.default.contentsOfDirectory(atPath: c.tmpDir).filter { $0.hasPrefix("udocker-runc-") }
        #expect(left == [])
    }

    @Test(.enabled(if: runcPath != nil, "runc is not installed (apt-get install runc)"))
    func deviceOption() throws {
        let c = try rsContainer()
        let r = try runRS(
            .R1, c, options(["sh", "-c", "head -c 4 /dev/zero | wc -c; echo x > /dev/mynull && echo ok"]),
            devices: ["/dev/null:/dev/mynull"])
        #expect(r.output.replacingOccurrences(of: " ", with: "") == "4\nok\n", "\(r.error)")
    }
}

/// A tiny lock-protected box (tests only).
final class Mutex2<T>: @unchecked Sendable {
    private var value: T
    private let lock = NSLock()
    init(_ v: T) { value = v }
    func withLock<R>(_ body: (inout T) -> R) -> R { lock.lock(); defer { lock.unlock() }; return body(&value) }
}
