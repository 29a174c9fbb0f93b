import Foundation
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Corpus case 31: Ctrl-C in the middle of a pull, as the user, from a real registry slowed down
/// by a throttled forwarder so that the signal lands while a layer is being written.
@Suite("E2E interrupted pull", e2eEnabled)
struct InterruptTests {
    /// The `.partial` downloads in the repository's layers/, with their sizes.
    static func partials(_ box: E2ESandbox) -> [String: Int64] {
        var out: [String: Int64] = [:]
        for name in box.listDirectory(box.layersDirectory) where name.hasSuffix(".partial") {
            var st = stat()
            if stat("\(box.layersDirectory)/\(name)", &st) == 0 { out[name] = Int64(st.st_size) }
        }
        return out
    }

    /// True when nobody holds an flock on `path`.
    static func unlocked(_ path: String) -> Bool {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        return flock(fd, LOCK_EX | LOCK_NB) == 0
    }

    @Test(
        "SIGINT during a pull: exit 130, the partial layer kept unlocked, the next pull resumes it, verify --all clean",
        .enabled(if: ConnectProxy.available, "needs /usr/bin/python3 for the throttled forwarder"))
    func sigintDuringPull() async throws {
        let box = try sandbox()
        let work = try TemporaryDirectory()
        let forwarder = try await ThrottledForwarder.start(
            to: box.env.registry, bytesPerSecond: 4 << 20, pauseAfter: 4 << 20, in: work.path)
        defer { forwarder.stop() }
        let slowImage = box.env.image("debian", tag: box.env.debianTag, registry: forwarder.host)
        let log = "\(work.path)/pull.stderr"
        // The forwarder's stall holds the pull mid-way for the signal: the transfer limits (which
        // would end a stalled pull on their own, StallTests) are off here.
        let p = try RawRun.start(
            box, ["pull", slowImage], stderrPath: log,
            environment: ["UDOCKER_TRANSFER_STALL_TIMEOUT": "0", "UDOCKER_TRANSFER_MIN_RATE": "0"])
        // Wait until a layer is partly written (the forwarder stalls after 4 MiB, so the pull cannot
        // finish first however late this task runs): the signal then lands mid-download.
        var midway = false
        let deadline = ContinuousClock.now + .seconds(180)  // by the clock: polls slow down under load
        while p.isRunning && ContinuousClock.now < deadline {
            if Self.partials(box).values.contains(where: { $0 > 1 << 20 }) { midway = true; break }
            try await Task.sleep(for: .milliseconds(20))
        }
        try #require(
            midway,
            """
            the pull never had a partial layer of 1 MiB (running: \(p.isRunning), partials: \(Self.partials(box))); its stderr:
            \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "-")
            """)
        kill(p.processIdentifier, SIGINT)
        await RawRun.wait(p)
        #expect(RawRun.status(p) == 130)
        // Kept for resume, and no lock left behind on it.
        let kept = Self.partials(box)
        #expect(!kept.isEmpty, "the partial download was removed")
        for name in kept.keys { #expect(Self.unlocked("\(box.layersDirectory)/\(name)"), "\(name) is still locked") }
        // The next pull (same registry, full speed) succeeds and resumes with a Range request.
        let again = try await box.udocker(["-D", "pull", box.env.debian], timeout: .seconds(600))
        expectSuccess(again)
        #expect(again.stderr.contains("(bytes="), "the second pull did not resume the partial layer:\n\(again.stderr.suffix(2000))")
        #expect(Self.partials(box).isEmpty)
        try await CorpusTests.expectVerified(box, "an interrupted pull")
    }
}
