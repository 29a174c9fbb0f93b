import Foundation
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Batch / high-throughput use: many short runs of one container, runs killed by SIGKILL, and
/// SIGTERM/SIGINT from a batch system, as the unprivileged user with the N1 default.
@Suite("E2E batch and HTC", e2eEnabled, .serialized)
struct HTCTests {
    /// `UDOCKER_HTC_RUNS` (default 1000).
    static let runs = Int(ProcessInfo.processInfo.environment["UDOCKER_HTC_RUNS"] ?? "") ?? 1000

    /// Per-run leftovers: anything in TMPDIR (udocker's tmpdir) and udocker files in the repository's tmp/.
    static func leftovers(_ box: E2ESandbox) -> [String] {
        box.listDirectory("\(box.udockerDir)/tmp").filter { $0.hasPrefix("udocker-") }.map { "tmp/\($0)" }
            + box.listDirectory(box.tmp).map { "TMPDIR/\($0)" }
    }

    @Test("1000 short runs of one container, 2 at a time: all succeed, nothing left behind")
    func manyShortRuns() async throws {
        let box = try sandbox()
        let id = try await box.pullAndCreate(box.env.busybox, name: "bb")
        expectSuccess(try await box.run(["--nobanner", "bb", "true"]))  // the first run adds the container's .lock
        let before = box.listDirectory(box.containerDirectory(id))
        let failed = try await withThrowingTaskGroup(of: [String].self) { group in
            for worker in 0..<2 {
                group.addTask {
                    var failures: [String] = []
                    for i in stride(from: worker, to: Self.runs, by: 2) {
                        let r = try await box.run(["--nobanner", "bb", "sh", "-c", "echo run-$0", "\(i)"])
                        if !(r.status == 0 && r.stdout == "run-\(i)\n" && r.stderr.isEmpty) { failures.append("run \(i): \(r)") }
                    }
                    return failures
                }
            }
            return try await group.reduce([], +)
        }
        print("HTC: \(Self.runs) runs, 2 at a time: \(failed.count) failed")
        #expect(failed.isEmpty, "\(failed.count) of \(Self.runs) runs failed; first: \(failed.first ?? "")")
        #expect(Self.leftovers(box) == [])
        #expect(box.listDirectory(box.containerDirectory(id)) == before, "files added to the container directory")
    }

    @Test("a run killed by SIGKILL takes its container with it; its run directory is removed by the next run")
    func sigkillLeftoversCleanedOnNextStart() async throws {
        let box = try sandbox()
        _ = try await box.pullAndCreate(box.env.busybox, name: "bb")
        let marker = "3021"
        defer { RawRun.kill(process: "sleep", marker) }  // only a failing run leaves one
        let p = try RawRun.start(box, ["run", "--nobanner", "bb", "sleep", marker])
        try #require(await RawRun.waitFor(process: "sleep", marker, present: true), "the container never started")
        #expect(Self.leftovers(box).contains { $0.hasPrefix("TMPDIR/udocker-run-") }, "no run directory while running")
        kill(p.processIdentifier, SIGKILL)
        await RawRun.wait(p)
        #expect(await RawRun.waitFor(process: "sleep", marker, present: false), "the container outlived udocker's SIGKILL")
        #expect(Self.leftovers(box).contains { $0.hasPrefix("TMPDIR/udocker-run-") }, "SIGKILL should leave the run directory")
        let next = try await box.run(["--nobanner", "bb", "true"])
        expectSuccess(next)
        #expect(Self.leftovers(box) == [], "the next run did not clean up")
    }

    @Test("SIGTERM reaches the container's whole process group; exit status 143")
    func sigtermReachesProcessGroup() async throws {
        let box = try sandbox()
        _ = try await box.pullAndCreate(box.env.busybox, name: "bb")
        defer { RawRun.kill(process: "sleep", "3022"); RawRun.kill(process: "sleep", "3023") }
        let p = try RawRun.start(box, ["run", "--nobanner", "bb", "sh", "-c", "sleep 3022 & sleep 3023; echo not-reached"])
        try #require(await RawRun.waitFor(process: "sleep", "3022", present: true))
        try #require(await RawRun.waitFor(process: "sleep", "3023", present: true))
        kill(p.processIdentifier, SIGTERM)
        await RawRun.wait(p)
        #expect(RawRun.status(p) == 143)
        #expect(await RawRun.waitFor(process: "sleep", "3022", present: false), "the background process survived")
        #expect(await RawRun.waitFor(process: "sleep", "3023", present: false))
        #expect(Self.leftovers(box) == [])
    }

    @Test("SIGINT ends the command; exit status 130")
    func sigintStatus() async throws {
        let box = try sandbox()
        _ = try await box.pullAndCreate(box.env.busybox, name: "bb")
        defer { RawRun.kill(process: "sleep", "3024") }
        let p = try RawRun.start(box, ["run", "--nobanner", "bb", "sh", "-c", "sleep 3024; echo not-reached"])
        try #require(await RawRun.waitFor(process: "sleep", "3024", present: true))
        kill(p.processIdentifier, SIGINT)
        await RawRun.wait(p)
        #expect(RawRun.status(p) == 130)
        #expect(await RawRun.waitFor(process: "sleep", "3024", present: false))
    }

    /// Issue 10 item 5: a SIGTERM while the container is being set up (namespaces, mounts) must
    /// not orphan it. Signals are sent at spread-out moments of the start-up; every run must end
    /// with status 143 and leave no container process behind.
    @Test("SIGTERM at any moment of the start-up leaves no orphaned container")
    func sigtermDuringStartup() async throws {
        let box = try sandbox()
        _ = try await box.pullAndCreate(box.env.busybox, name: "bb")
        // Several volumes make the child's mount setup a wider window.
        var volumes: [String] = []
        for v in 0..<24 {
            try box.makeUserDirectory("\(box.scratch)/v\(v)")
            volumes += ["-v", "\(box.scratch)/v\(v):/mnt/v\(v)"]
        }
        var orphans: [String] = []
        var statuses: [Int32] = []
        for i in 0..<40 {
            let marker = String(40000 + i)
            let p = try RawRun.start(box, ["run", "--nobanner"] + volumes + ["bb", "sleep", marker])
            usleep(useconds_t(2_000 + i * 1_500))
            kill(p.processIdentifier, SIGTERM)
            await RawRun.wait(p)
            statuses.append(RawRun.status(p))
            if !(await RawRun.waitFor(process: "sleep", marker, present: false, seconds: 3)) { orphans.append(marker) }
        }
        for m in orphans { RawRun.kill(process: "sleep", m) }
        #expect(orphans == [], "containers orphaned by SIGTERM: \(orphans)")
        #expect(statuses.allSatisfy { $0 == 143 }, "statuses: \(statuses)")
        let next = try await box.run(["--nobanner", "bb", "true"])
        expectSuccess(next)
        #expect(Self.leftovers(box) == [])
    }
}

/// udocker started directly (not through `UserCommand`), so the test can signal its pid: setpriv
/// and env exec, so the pid is udocker's.
enum RawRun {
    /// `stderrPath`: a file that receives udocker's stderr (for a test's failure message); else discarded.
    static func start(
        _ box: E2ESandbox, _ args: [String], stderrPath: String? = nil, environment extra: [String: String] = [:]
    ) throws -> Process {
        var argv: [String] = []
        if geteuid() == 0 && box.env.user != "root" {
            let (uid, gid) = try UserCommand.ids(of: box.env.user)
            argv += ["/usr/bin/setpriv", "--reuid=\(uid)", "--regid=\(gid)", "--clear-groups", "--"]
        }
        argv +=
            ["/usr/bin/env", "-i"]
            + box.baseEnvironment.merging(extra) { $1 }.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        argv += [box.env.binary] + args
        let p = Process()
        p.executableURL = URL(fileURLWithPath: argv[0])
        p.arguments = Array(argv.dropFirst())
        p.currentDirectoryURL = URL(fileURLWithPath: box.path)
        p.standardInput = FileHandle.nullDevice
        p.standardOutput = FileHandle.nullDevice
        if let stderrPath, FileManager.default.createFile(atPath: stderrPath, contents: nil),
            let handle = FileHandle(forWritingAtPath: stderrPath)
        {
            p.standardError = handle
        } else {
            p.standardError = FileHandle.nullDevice
        }
        try p.run()
        return p
    }

    /// Waits up to 15 s for udocker to end, then kills it (its status then shows 137).
    static func wait(_ p: Process) async {
        for _ in 0..<750 where p.isRunning { try? await Task.sleep(for: .milliseconds(20)) }
        if p.isRunning { Glibc.kill(p.processIdentifier, SIGKILL) }
        p.waitUntilExit()
    }

    /// Shell convention: 128 + signal when killed.
    static func status(_ p: Process) -> Int32 {
        p.terminationReason == .uncaughtSignal ? 128 + p.terminationStatus : p.terminationStatus
    }

    /// Pids whose command line is exactly `name marker`.
    static func pids(_ name: String, _ marker: String) -> [pid_t] {
        let want = Data("\(name)\0\(marker)\0".utf8)
        return ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { entry in
            guard let pid = pid_t(entry),
                let data = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline"), data == want
            else { return nil }
            return pid
        }
    }

    /// Polls (up to `seconds`) until such a process exists (`present`) or none does.
    static func waitFor(process name: String, _ marker: String, present: Bool, seconds: Int = 15) async -> Bool {
        for _ in 0..<(seconds * 50) {
            if pids(name, marker).isEmpty != present { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return false
    }

    static func kill(process name: String, _ marker: String) {
        for p in pids(name, marker) { Glibc.kill(p, SIGKILL) }
    }
}
