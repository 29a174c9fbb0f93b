import Foundation
import Testing
import TestSupport

/// create / ps / name / rmname / inspect / setup / rm and the container layout (reference §3.3, §3.4).
@Suite("E2E containers", e2eEnabled)
struct ContainerTests {
    @Test("create writes containers/<uuid>/{ROOT,container.json,imagerepo.name} and a relative alias link")
    func createLayout() async throws {
        let box = try sandbox()
        let image = box.env.busybox
        let id = try await box.pullAndCreate(image, name: "bb")
        let dir = box.containerDirectory(id)
        #expect(box.readFile("\(dir)/imagerepo.name")?.trimmingCharacters(in: .newlines) == image)
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(dir)/container.json"))) as? [String: Any]
        #expect((json?["config"] as? [String: Any])?["Cmd"] as? [String] == ["sh"], "container.json: \(String(describing: json))")
        #expect(box.exists("\(dir)/ROOT/bin/busybox"))
        #expect(box.exists("\(dir)/ROOT/etc/e2e-release"))
        let alias = "\(box.containersDirectory)/bb"
        #expect(box.isSymlink(alias))
        #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: alias)) == id, "alias must be a relative link to the id")
        // --name clash
        let again = try await box.udocker(["create", "--name=bb", image])
        expectOneLineError(again)
    }

    @Test("ps lists containers in udocker's format; -m shows the mode")
    func ps() async throws {
        let box = try sandbox()
        let image = box.env.busybox
        let id = try await box.pullAndCreate(image, name: "bb")
        let r = try await box.udocker(["ps"])
        expectSuccess(r)
        #expect(
            r.stdoutLines.first?.trimmingTrailingWhitespace == "CONTAINER ID                         P M NAMES              IMAGE", "\(r)")
        let expected = id + " . W " + "['bb']".padding(toLength: 18, withPad: " ", startingAt: 0) + " " + image
        #expect(r.stdoutLines.dropFirst().map(\.trimmingTrailingWhitespace) == [expected], "\(r)")

        let m = try await box.udocker(["ps", "-m"])
        expectSuccess(m)
        #expect(m.stdoutLines.first?.hasPrefix("CONTAINER ID                         P M MOD NAMES") == true, "\(m)")
        #expect(m.stdoutLines.dropFirst().first?.hasPrefix("\(id) . W N1 ") == true, "default mode should be N1:\n\(m)")
        try await box.use(.p1, for: "bb")
        let m2 = try await box.udocker(["ps", "-m"])
        #expect(m2.stdoutLines.dropFirst().first?.hasPrefix("\(id) . W P1 ") == true, "\(m2)")
    }

    /// The default mode costs host probes, the user-namespace test a fork: `ps` pays it only
    /// when `-m` shows a container without a mode of its own (review: it forked on every call).
    @Test(
        "ps starts no process unless -m shows a container without a mode",
        .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/strace"), "needs strace (scripts/test-deps.sh)"))
    func psProbesOnlyForTheMode() async throws {
        let box = try sandbox()
        let id = try await box.pullAndCreate(box.env.busybox, name: "bb")
        /// The processes (not threads) `udocker <args>` started, as strace saw them.
        func processesStarted(_ args: [String]) async throws -> [String] {
            let log = "\(box.scratch)/strace.log"
            let quoted = args.map { "'\($0)'" }.joined(separator: " ")
            let r = try await box.shell(
                "strace -f -qq -e signal=none -e trace=fork,vfork,clone,clone3 -o \(log) \(box.env.binary) \(quoted)")
            try requireSuccess(r)
            #expect(r.stdoutLines.first?.hasPrefix("CONTAINER ID") == true, "\(r)")
            let lines = (box.readFile(log) ?? "").split(separator: "\n").map(String.init)
            return lines.filter { !$0.contains("CLONE_THREAD") && !$0.contains("resumed>") && !$0.contains("exited with") }
        }
        #expect(try await processesStarted(["ps"]).isEmpty, "ps without -m started a process")
        #expect(try await processesStarted(["ps", "-p"]).isEmpty, "ps -p started a process")
        #expect(!(try await processesStarted(["ps", "-m"]).isEmpty), "ps -m: the user-namespace probe no longer forks? fix this test")
        try await box.use(.p1, for: "bb")
        #expect(try await processesStarted(["ps", "-m"]).isEmpty, "ps -m with every container's mode known started a process")
        #expect(try await box.psLines(["-m"]).first?.hasPrefix("\(id) . W P1 ") == true)
    }

    @Test("name / rmname add and remove aliases; bad aliases are refused")
    func names() async throws {
        let box = try sandbox()
        let id = try await box.pullAndCreate(box.env.busybox)
        expectSuccess(try await box.udocker(["name", id, "first"]))
        expectSuccess(try await box.udocker(["name", id, "second"]))
        let lines = try await box.psLines()
        #expect(lines.count == 1 && lines[0].contains("'first'") && lines[0].contains("'second'"), "ps: \(lines)")
        // an alias works wherever a container id does
        let p = try await box.udocker(["inspect", "-p", "second"])
        #expect(p.stdout.trimmingCharacters(in: .newlines) == box.containerRoot(id), "\(p)")
        expectOneLineError(try await box.udocker(["name", id, "first"]))  // already taken
        expectOneLineError(try await box.udocker(["name", id, "bad/name"]))  // invalid character
        expectSuccess(try await box.udocker(["rmname", "second"]))
        #expect(!box.exists("\(box.containersDirectory)/second"))
        #expect(box.exists(box.containerDirectory(id)), "rmname must not remove the container")
        #expect(try await box.psLines().first?.contains("'second'") == false)
    }

    @Test("inspect <container> prints its config; inspect -p prints ROOT")
    func inspectContainer() async throws {
        let box = try sandbox()
        let id = try await box.pullAndCreate(box.env.busybox, name: "bb")
        let r = try await box.udocker(["inspect", "bb"])
        expectSuccess(r)
        let json = try jsonObject(r)
        #expect((json["config"] as? [String: Any])?["WorkingDir"] as? String == "/tmp", "\(r)")
        let p = try await box.udocker(["inspect", "-p", id])
        expectSuccess(p)
        #expect(p.stdout == box.containerRoot(id) + "\n", "\(p)")
    }

    @Test("setup without options prints the mode; --execmode changes it")
    func setupMode() async throws {
        let box = try sandbox()
        _ = try await box.pullAndCreate(box.env.busybox, name: "bb")
        let r = try await box.udocker(["setup", "bb"])
        expectSuccess(r)
        #expect(r.stdoutLines.contains("execmode: N1"), "\(r)")
        try await box.use(.p1, for: "bb")
        expectOneLineError(try await box.udocker(["setup", "--execmode=Z9", "bb"]))
    }

    @Test("rm deletes the container and its aliases")
    func rm() async throws {
        let box = try sandbox()
        let id = try await box.pullAndCreate(box.env.busybox, name: "bb")
        let keep = try await box.create(box.env.busybox)
        expectSuccess(try await box.udocker(["rm", "bb"]))
        #expect(!box.exists(box.containerDirectory(id)))
        #expect(!box.isSymlink("\(box.containersDirectory)/bb"))
        let lines = try await box.psLines()
        #expect(lines.count == 1 && lines[0].hasPrefix(keep), "ps: \(lines)")
        expectSuccess(try await box.udocker(["rm", keep]))
        #expect(try await box.psLines().isEmpty)
        // the image is untouched
        #expect(try await box.imageLines() == ["\(box.env.busybox)    ."])
    }
}
