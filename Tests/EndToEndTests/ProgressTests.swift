import Foundation
import Testing
import TestSupport

/// Progress of pull and create as the user sees it: live lines on a terminal (a real
/// pseudo-terminal made by `script`), plain lines without one or with `NO_COLOR`, none with `-q`.
@Suite("progress", e2eEnabled, .serialized)
struct ProgressTests {
    static let esc = "\u{1B}"
    static let haveScript = FileManager.default.isExecutableFile(atPath: "/usr/bin/script")

    /// `udocker <args>` under a pseudo-terminal: stdout and stderr both go to it.
    func underTerminal(_ s: E2ESandbox, _ args: String, environment: [String: String] = [:]) async throws -> CommandResult {
        try await s.shell("exec /usr/bin/script -qfec '\(s.env.binary) \(args)' /dev/null", environment: environment)
    }

    @Test("a pull on a terminal draws live lines per layer and a total", .enabled(if: haveScript, "needs script (bsdutils)"))
    func terminalPull() async throws {
        let s = try sandbox(); defer { s.remove() }
        // The one-word name a user types, under a configured registry.
        let r = try await underTerminal(
            s, "pull debian:\(s.env.debianTag)",
            environment: ["UDOCKER_REGISTRY": "http://\(s.env.registry)"])
        try requireSuccess(r)
        let screen = r.stdout
        #expect(screen.contains(Self.esc + "["), "live lines move the cursor:\n\(screen)")
        #expect(
            screen.range(of: #"sha256:[0-9a-f]{12} \[[= ]{20}\] +\d+%"#, options: .regularExpression) != nil,
            "one line per layer with a bar:\n\(screen)")
        #expect(
            screen.range(of: #"total [0-9.]+ [KMG]?B/[0-9.]+ [KMG]?B"#, options: .regularExpression) != nil,
            "a total line:\n\(screen)")
        #expect(screen.contains("pulled debian:\(s.env.debianTag): 1 blob(s)"), "a summary:\n\(screen)")
        #expect(!screen.contains("Info: sha256:"), "no batch lines on a terminal:\n\(screen)")
    }

    @Test("a pull without a terminal prints one line per step, a summary and no escape code")
    func batchPull() async throws {
        let s = try sandbox(); defer { s.remove() }
        let r = try await s.udocker(["pull", s.env.debian])
        try requireSuccess(r)
        #expect(!r.stderr.contains(Self.esc) && !r.stdout.contains(Self.esc), "\(r)")
        #expect(r.stderr.contains(": downloading ") && r.stderr.contains(": done"), "\(r)")
        #expect(!r.stderr.contains("%"), "no per-chunk percentages in a log:\n\(r)")
        let summary = r.stderrLines.filter { $0.hasPrefix("Info: pulled ") }
        #expect(summary.count == 1 && summary[0].contains(" blob(s), ") && summary[0].contains("MB in "), "\(r)")
        #expect(r.stdout.isEmpty, "progress never goes to stdout:\n\(r)")
    }

    @Test("NO_COLOR on a terminal: plain lines, no escape code", .enabled(if: haveScript, "needs script (bsdutils)"))
    func noColour() async throws {
        let s = try sandbox(); defer { s.remove() }
        try await s.pull(s.env.busybox)
        let r = try await underTerminal(s, "create \(s.env.busybox)", environment: ["NO_COLOR": "1"])
        try requireSuccess(r)
        #expect(!r.stdout.contains(Self.esc), "\(r.stdout.debugDescription)")
        #expect(r.stdout.contains("Info: layer 1/1 extracted ("), "create shows the files extracted:\n\(r)")
        let p = try await underTerminal(s, "pull \(s.env.debian)", environment: ["NO_COLOR": "1"])
        try requireSuccess(p)
        #expect(!p.stdout.contains(Self.esc), "\(p.stdout.debugDescription)")
        #expect(p.stdout.contains("Info: pulled "), "\(p)")
    }

    @Test("-q shows no progress, on a terminal or not", .enabled(if: haveScript, "needs script (bsdutils)"))
    func quiet() async throws {
        let s = try sandbox(); defer { s.remove() }
        let r = try await underTerminal(s, "-q pull \(s.env.debian)")
        try requireSuccess(r)
        #expect(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "\(r.stdout.debugDescription)")
        let c = try await s.udocker(["-q", "create", s.env.debian])
        try requireSuccess(c)
        #expect(c.stderr.isEmpty, "\(c)")
        #expect(c.stdoutLines.count == 1, "create prints only the id:\n\(c)")
    }
}
