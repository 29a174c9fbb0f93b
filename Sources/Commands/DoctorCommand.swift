import ContainerModel
import ArgumentParser
import Engines
import FoundationEssentials
import Store
import UDockerSystem

/// `udocker doctor [--json]`: which engines work on this host, exactly why the others do not and
/// how to fix it, and the state of the repository. Exit 0 when at least one engine of the
/// automatic order works, 1 when none does.
struct DoctorCommand: UDockerCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor", abstract: "Check which execution engines work on this host",
        discussion: """
            doctor [--json]
            Per engine (N1, overlay, P1/P2, F1-F4, R1-R3, S1): works, or the exact reason and the fix;
            the repository: writable, free space and inodes, filesystem type.
            """)
    static var needsRepository: Bool { false }
    @Flag(name: .customLong("json"), help: "machine-readable output") var json = false

    struct Report: Codable {
        var findings: [HostFinding]
        var order: [String]
        /// The engine a container with no mode of its own runs with here (nil: none works).
        var automatic: String?
        var skipped: [String]
    }

    func execute(_ context: CommandContext) async throws -> Int32 {
        var environment = ModeResolver(context: context).engineEnvironment()
        if !FileManager.default.fileExists(atPath: environment.tmpDir) {
            // No repository yet: probe in the system's scratch instead of creating one.
            environment.tmpDir = context.environment["TMPDIR"].flatMap { $0.hasPrefix("/") ? $0 : nil } ?? "/tmp"
        }
        let findings = HostChecks.run(context: HostCheckContext(environment: environment, repository: context.repository.topDirectory))
        var skipped: [String] = []
        var automatic: ExecutionMode?
        for mode in EngineSelector.automaticOrder {
            guard let why = EngineSelector.problem(with: mode, environment: environment) else { automatic = mode; break }
            skipped.append("\(mode.rawValue): \(why)")
        }
        let report = Report(
            findings: findings, order: EngineSelector.automaticOrder.map(\.rawValue),
            automatic: automatic?.rawValue, skipped: skipped)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
        } else {
            print(Self.text(report))
        }
        return automatic == nil ? 1 : 0
    }

    static func text(_ report: Report) -> String {
        var lines: [String] = []
        let width = (report.findings.map(\.check.count).max() ?? 10) + 2
        for f in report.findings {
            let mark =
                switch f.status {
                case .ok: "✔";
                case .warning: "!";
                case .failed: "✘"
                }
            lines.append("\(mark) \(Format.column(f.check, width: width))\(f.summary)")
            let indent = String(repeating: " ", count: width + 2)
            for d in f.details { lines.append(indent + d) }
            if let fix = f.fix { lines.append(indent + "fix: " + fix) }
        }
        let order = report.order.joined(separator: " → ")
        if let mode = report.automatic {
            var line = "containers with no execution mode run \(mode) here (order \(order))"
            if !report.skipped.isEmpty { line += "; skipped: " + report.skipped.joined(separator: "; ") }
            lines.append(line)
        } else {
            lines.append("no engine of \(order) works here: " + report.skipped.joined(separator: "; "))
        }
        return lines.joined(separator: "\n")
    }
}
