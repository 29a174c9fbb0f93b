import Foundation
import Testing
import TestSupport

/// `run` on both engines with the static busybox image: exit status, env, volumes, workdir,
/// user, stdin, --rm, and run from an image name.
@Suite("E2E run", e2eEnabled)
struct RunTests {
    /// pull + create busybox as `bb`, engine selected.
    func busybox(_ engine: Engine, _ name: String = #function) async throws -> (E2ESandbox, String) {
        let box = try sandbox("\(name)-\(engine.rawValue)")
        let id = try await box.pullAndCreate(box.env.busybox, name: "bb")
        try await box.use(engine, for: "bb")
        return (box, id)
    }

    @Test("exit status of the command is udocker's exit status", arguments: Engine.allCases)
    func exitStatus(engine: Engine) async throws {
        let (box, _) = try await busybox(engine)
        for (cmd, status) in [(["true"], Int32(0)), (["false"], 1), (["sh", "-c", "exit 3"], 3), (["sh", "-c", "exit 255"], 255)] {
            let r = try await box.run(["bb"] + cmd)
            expectNoCrash(r)
            #expect(r.status == status, "\(r)")
        }
        let missing = try await box.run(["bb", "/no/such/program"])
        expectNoCrash(missing)
        #expect(missing.status != 0, "\(missing)")
    }

    @Test("stdout, stderr and stdin are the container's", arguments: Engine.allCases)
    func stdio(engine: Engine) async throws {
        let (box, _) = try await busybox(engine)
        let r = try await box.run(["bb", "sh", "-c", "echo out; echo err >&2"])
        expectSuccess(r)
        #expect(r.stdout == "out\n", "\(r)")
        #expect(r.stderrLines.contains("err"), "\(r)")
        let cat = try await box.run(["bb", "cat"], stdin: "line1\nline2\n")
        expectSuccess(cat)
        #expect(cat.stdout == "line1\nline2\n", "\(cat)")
        // no command: the image Cmd (sh) reads the script from stdin
        let sh = try await box.run(["bb"], stdin: "echo from-default-cmd\n")
        expectSuccess(sh)
        #expect(sh.stdout == "from-default-cmd\n", "\(sh)")
    }

    @Test("run --rm -e X=1 -v /tmp:/mnt -w /mnt <c> sh -c 'echo $X; pwd; exit 42'", arguments: Engine.allCases)
    func envVolumeWorkdirExit(engine: Engine) async throws {
        let (box, id) = try await busybox(engine)
        let r = try await box.run(["--rm", "-e", "X=1", "-v", "/tmp:/mnt", "-w", "/mnt", "bb", "sh", "-c", "echo $X; pwd; exit 42"])
        expectNoCrash(r)
        #expect(r.stdout == "1\n/mnt\n", "\(r)")
        #expect(r.status == 42, "\(r)")
        #expect(!box.exists(box.containerDirectory(id)), "--rm left the container")
        #expect(try await box.psLines().isEmpty)
    }

    @Test("image WorkingDir is the default cwd; -w overrides; a missing -w dir fails", arguments: Engine.allCases)
    func workdir(engine: Engine) async throws {
        let (box, _) = try await busybox(engine)
        let dflt = try await box.run(["bb", "pwd"])
        expectSuccess(dflt)
        #expect(dflt.stdout == "/tmp\n", "image WorkingDir is /tmp:\n\(dflt)")
        let w = try await box.run(["-w", "/etc", "bb", "pwd"])
        expectSuccess(w)
        #expect(w.stdout == "/etc\n", "\(w)")
        let bad = try await box.run(["-w", "/no/such/dir", "bb", "pwd"])
        expectNoCrash(bad)
        #expect(bad.status != 0, "\(bad)")
    }

    @Test("volumes: host files are visible and writes go to the host", arguments: Engine.allCases)
    func volumes(engine: Engine) async throws {
        let (box, _) = try await busybox(engine)
        let vol = "\(box.scratch)/vol"
        try box.writeUserFile("\(vol)/hello", "hello from host\n")
        let r = try await box.run(["-v", "\(vol):/data", "bb", "sh", "-c", "cat /data/hello; echo written > /data/new"])
        expectSuccess(r)
        #expect(r.stdout == "hello from host\n", "\(r)")
        #expect(box.readFile("\(vol)/new") == "written\n", "write through the volume did not reach the host")
        // same path on both sides (-v /dir)
        let same = try await box.run(["-v", vol, "bb", "cat", "\(vol)/hello"])
        expectSuccess(same)
        #expect(same.stdout == "hello from host\n", "\(same)")
        // the container ROOT is not modified by writes into the volume
        let root = box.containerRoot(try #require(box.listDirectory(box.containersDirectory).first { isContainerID($0) }))
        #expect(!box.exists("\(root)/data/new"))
        // a missing host dir is an error
        let bad = try await box.run(["-v", "\(box.scratch)/nonexistent:/data", "bb", "true"])
        expectNoCrash(bad)
        #expect(bad.status != 0, "\(bad)")
    }

    @Test("environment precedence: -e > image Env > --env-file; the host env does not leak", arguments: Engine.allCases)
    func environment(engine: Engine) async throws {
        let (box, _) = try await busybox(engine)
        let envFile = "\(box.scratch)/env.list"
        try box.writeUserFile(envFile, "X=from-file\nE2E_OVERRIDE=from-file\nFROM_FILE=yes\n")
        let script = "echo \"$X|$E2E_OVERRIDE|$E2E_IMAGE_VAR|$FROM_FILE|${E2E_HOST_ONLY:-unset}|$CLI2\""
        let r = try await box.run(
            ["-e", "X=from-cli", "-e", "CLI2=two", "--env-file=\(envFile)", "bb", "sh", "-c", script],
            environment: ["E2E_HOST_ONLY": "leaked"])
        expectSuccess(r)
        #expect(r.stdout == "from-cli|from-image|from-image|yes|unset|two\n", "\(r)")
        let over = try await box.run(["-e", "E2E_OVERRIDE=from-cli", "bb", "sh", "-c", "echo \"${E2E_OVERRIDE-unset}\""])
        expectSuccess(over)
        #expect(over.stdout == "from-cli\n", "\(over)")
        // -e NAME copies the host value
        let copy = try await box.run(
            ["-e", "E2E_HOST_ONLY", "bb", "sh", "-c", "echo \"${E2E_HOST_ONLY-unset}\""], environment: ["E2E_HOST_ONLY": "copied"])
        expectSuccess(copy)
        #expect(copy.stdout == "copied\n", "\(copy)")
        // PATH comes from the image
        let path = try await box.run(["bb", "sh", "-c", "echo \"$PATH\""])
        #expect(path.stdout == "/usr/sbin:/usr/bin:/sbin:/bin\n", "\(path)")
    }

    /// The tool settings of the config file steer the engine search as values; they never became
    /// host variables that `--hostenv` would hand to the container (review: UDOCKER_USE_*).
    @Test("--hostenv passes the host environment, not the config file's tool settings")
    func hostenvDoesNotLeakConfigSettings() async throws {
        let box = try sandbox()
        _ = try await box.pullAndCreate(box.env.busybox, name: "bb")
        let runc = "\(box.scratch)/tools/runc"
        try box.writeUserFile(runc, "#!/bin/sh\nexec /usr/sbin/runc \"$@\"\n", mode: 0o755)
        try box.writeUserFile(
            "\(box.udockerDir)/udocker.conf",
            "[DEFAULT]\nuse_runc_executable = \(runc)\nuse_singularity_executable = \(box.scratch)/tools/apptainer\n")
        let r = try await box.run(["--hostenv", "--nobanner", "bb", "env"], environment: ["E2E_HOST_ONLY": "passed"])
        expectSuccess(r)
        #expect(r.stdoutLines.contains("E2E_HOST_ONLY=passed"), "--hostenv no longer passes the host environment:\n\(r)")
        #expect(!r.stdout.contains("UDOCKER_USE_"), "a config setting reached the container as a variable:\n\(r)")
        // The settings still choose the tools.
        let v = try await box.udocker(["version", "--engines"])
        expectSuccess(v)
        #expect(v.stdoutLines.contains("engine R1 R2 R3: \(runc)"), "\(v)")
        #expect(
            v.stdoutLines.contains { $0.hasPrefix("engine S1: not available") && $0.contains("\(box.scratch)/tools/apptainer") }, "\(v)")
    }

    @Test("the default user is root (uid 0) inside the container", arguments: Engine.allCases)
    func defaultUser(engine: Engine) async throws {
        let (box, _) = try await busybox(engine)
        let r = try await box.run(["bb", "sh", "-c", "id -u; id -g"])
        expectSuccess(r)
        #expect(r.stdout == "0\n0\n", "\(r)")
    }

    @Test("-u 1000:1000 runs as uid/gid 1000 (N1)")
    func user() async throws {
        let (box, _) = try await busybox(.n1)
        let r = try await box.run(["-u", "1000:1000", "bb", "sh", "-c", "id -u; id -g"])
        expectSuccess(r)
        #expect(r.stdout == "1000\n1000\n", "\(r)")
        let long = try await box.run(["--user=1000", "bb", "id", "-u"])
        expectSuccess(long)
        #expect(long.stdout == "1000\n", "\(long)")
    }

    @Test("files written in the container are owned by the invoking user on the host", arguments: Engine.allCases)
    func ownership(engine: Engine) async throws {
        let (box, id) = try await busybox(engine)
        expectSuccess(try await box.run(["bb", "sh", "-c", "echo x > /root/made-inside"]))
        let file = "\(box.containerRoot(id))/root/made-inside"
        #expect(box.readFile(file) == "x\n")
        let attrs = try FileManager.default.attributesOfItem(atPath: file)
        let owner = (attrs[.ownerAccountID] as? NSNumber)?.uint32Value
        let expected = geteuid() == 0 ? try UserCommand.ids(of: box.env.user).uid : geteuid()
        #expect(owner == expected, "owner \(String(describing: owner)), expected \(expected)")
    }

    @Test("run <image> pulls and creates when the image is missing; --rm removes the container", arguments: Engine.allCases)
    func runImage(engine: Engine) async throws {
        let box = try sandbox("runImage-\(engine.rawValue)")
        // the engine of a container created by run comes from the default mode
        let env = engine == .n1 ? [:] : ["UDOCKER_DEFAULT_EXECUTION_MODE": engine.rawValue]
        let r = try await box.run([box.env.busybox, "cat", "/etc/e2e-release"], environment: env)
        expectSuccess(r)
        #expect(r.stdoutLines.last == "udocker-e2e busybox image", "\(r)")
        #expect(try await box.imageLines() == ["\(box.env.busybox)    ."])
        let ps = try await box.psLines()
        #expect(ps.count == 1 && ps[0].hasSuffix(box.env.busybox), "ps: \(ps)")

        let rm = try await box.run(["--rm", box.env.busybox, "true"], environment: env)
        expectSuccess(rm)
        #expect(try await box.psLines().count == 1, "run --rm <image> must not leave a container")
    }

    @Test("run of a container that does not exist and an image that cannot be pulled fails")
    func runUnknown() async throws {
        let box = try sandbox()
        let r = try await box.run(["\(box.env.registry)/library/doesnotexist:latest", "true"])
        expectNoCrash(r)
        #expect(r.status != 0, "\(r)")
        #expect(!r.errorLines.isEmpty, "\(r)")
        #expect(try await box.psLines().isEmpty)
    }
}
