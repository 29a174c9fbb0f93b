import Foundation
import Testing
import TestSupport

// End-to-end tests: drive the `udocker` binary ($UDOCKER_E2E_BIN) as the unprivileged test user
// against the fixture registries (scripts/test-fixtures.sh). Every test has its own sandbox
// (HOME, UDOCKER_DIR, TMPDIR) under $UDOCKER_E2E_HOME. Disabled unless UDOCKER_E2E=1; with
// UDOCKER_E2E=1 an incomplete environment makes every test fail (E2EEnvironment.load throws).

/// Trait for every E2E suite.
let e2eEnabled: ConditionTrait = .enabled(
    if: E2EEnvironment.isEnabled,
    "end-to-end tests need UDOCKER_E2E=1 and the fixtures (make test)")

/// Execution engines exercised by the run tests.
enum Engine: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case n1 = "N1"  // native user namespaces (the default: no setup)
    case p1 = "P1"  // PRoot, selected with `setup --execmode=P1`
    var testDescription: String { rawValue }
}

/// A fresh sandbox for one test.
func sandbox(_ name: String = #function) throws -> E2ESandbox {
    let env = try E2EEnvironment.load()
    return try E2ESandbox(env, name: name)
}

/// udocker's container id check: `^[a-z0-9]+-[a-z0-9]+-[a-z0-9]+-[a-z0-9]+-[a-z0-9]+$`.
func isContainerID(_ s: String) -> Bool {
    let parts = s.split(separator: "-", omittingEmptySubsequences: false)
    return parts.count == 5 && parts.allSatisfy { !$0.isEmpty && $0.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) } }
}

/// Exit 0 or record the whole command output.
@discardableResult
func expectSuccess(_ r: CommandResult, sourceLocation: SourceLocation = #_sourceLocation) -> Bool {
    #expect(r.succeeded, "command failed:\n\(r)", sourceLocation: sourceLocation)
    expectNoCrash(r, sourceLocation: sourceLocation)
    return r.succeeded
}

func requireSuccess(_ r: CommandResult, sourceLocation: SourceLocation = #_sourceLocation) throws {
    expectNoCrash(r, sourceLocation: sourceLocation)
    try #require(r.succeeded, "command failed:\n\(r)", sourceLocation: sourceLocation)
}

/// No Swift runtime trap, no Python traceback, no timeout.
func expectNoCrash(_ r: CommandResult, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(!r.timedOut, "command timed out:\n\(r)", sourceLocation: sourceLocation)
    let bad = ["Fatal error", "Traceback (most recent call last)", "Stack dump", "Segmentation fault", "Illegal instruction"]
    #expect(!bad.contains { r.stderr.contains($0) || r.stdout.contains($0) }, "crash output:\n\(r)", sourceLocation: sourceLocation)
    #expect(r.status < 128 || r.status == 255, "killed by a signal:\n\(r)", sourceLocation: sourceLocation)
}

/// udocker's error convention: exit `status` (default 1) and exactly one `Error: ...` line on
/// stderr (Info/Warning lines ignored), nothing else.
func expectOneLineError(
    _ r: CommandResult, status: Int32? = 1, mentioning words: [String] = [],
    sourceLocation: SourceLocation = #_sourceLocation
) {
    expectNoCrash(r, sourceLocation: sourceLocation)
    if let status {
        #expect(r.status == status, "expected exit \(status):\n\(r)", sourceLocation: sourceLocation)
    } else {
        #expect(r.status != 0, "expected a failure:\n\(r)", sourceLocation: sourceLocation)
    }
    let lines = r.significantStderrLines
    #expect(
        lines.count == 1 && lines.first?.hasPrefix("Error:") == true,
        "expected exactly one 'Error:' line on stderr:\n\(r)", sourceLocation: sourceLocation)
    for w in words {
        #expect(
            lines.first?.lowercased().contains(w.lowercased()) == true,
            "error line should mention '\(w)':\n\(r)", sourceLocation: sourceLocation)
    }
}

extension E2ESandbox {
    /// `udocker pull <image>` must succeed.
    func pull(
        _ image: String, _ options: [String] = [], environment: [String: String] = [:],
        sourceLocation: SourceLocation = #_sourceLocation
    ) async throws {
        let r = try await udocker(["pull"] + options + [image], environment: environment)
        try requireSuccess(r, sourceLocation: sourceLocation)
    }

    /// `udocker create [--name=n] <image>`: stdout is exactly the new container id.
    func create(_ image: String, name: String? = nil, sourceLocation: SourceLocation = #_sourceLocation) async throws -> String {
        var args = ["create"]
        if let name { args.append("--name=\(name)") }
        args.append(image)
        let r = try await udocker(args)
        try requireSuccess(r, sourceLocation: sourceLocation)
        let id = r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(r.stdoutLines.count == 1, "create must print only the container id:\n\(r)", sourceLocation: sourceLocation)
        try #require(isContainerID(id), "not a container id: '\(id)'\n\(r)", sourceLocation: sourceLocation)
        try #require(exists(containerRoot(id)), "no ROOT for \(id)", sourceLocation: sourceLocation)
        return id
    }

    /// pull + create.
    func pullAndCreate(_ image: String, name: String? = nil, sourceLocation: SourceLocation = #_sourceLocation) async throws -> String {
        try await pull(image, sourceLocation: sourceLocation)
        return try await create(image, name: name, sourceLocation: sourceLocation)
    }

    /// Selects the engine: N1 is the default (nothing to do), P1 via `setup --execmode=P1`.
    func use(_ engine: Engine, for container: String, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        guard engine != .n1 else { return }
        try requireSuccess(try await udocker(["setup", "--execmode=\(engine.rawValue)", container]), sourceLocation: sourceLocation)
        let r = try await udocker(["setup", container])
        try requireSuccess(r, sourceLocation: sourceLocation)
        #expect(r.stdoutLines.contains("execmode: \(engine.rawValue)"), "\(r)", sourceLocation: sourceLocation)
    }

    /// `udocker run <args>` (no other processing).
    func run(_ args: [String], environment: [String: String] = [:], stdin: String? = nil) async throws -> CommandResult {
        try await udocker(["run"] + args, environment: environment, stdin: stdin)
    }

    /// Image lines of `udocker images` (without the REPOSITORY header).
    func imageLines(sourceLocation: SourceLocation = #_sourceLocation) async throws -> [String] {
        let r = try await udocker(["images"])
        try requireSuccess(r, sourceLocation: sourceLocation)
        #expect(r.stdoutLines.first == "REPOSITORY", "\(r)", sourceLocation: sourceLocation)
        return Array(r.stdoutLines.dropFirst())
    }

    /// Container lines of `udocker ps` (without the header).
    func psLines(_ options: [String] = [], sourceLocation: SourceLocation = #_sourceLocation) async throws -> [String] {
        let r = try await udocker(["ps"] + options)
        try requireSuccess(r, sourceLocation: sourceLocation)
        #expect(r.stdoutLines.first?.hasPrefix("CONTAINER ID") == true, "\(r)", sourceLocation: sourceLocation)
        return Array(r.stdoutLines.dropFirst())
    }

    /// Digests (`sha256:<hex>`) of the layers and the config of a pulled v2 image, from its `manifest`.
    func manifestDigests(_ image: String) throws -> (config: String, layers: [String]) {
        let data = try Data(contentsOf: URL(fileURLWithPath: "\(tagDirectory(image))/manifest"))
        let json = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let config = try #require((json["config"] as? [String: Any])?["digest"] as? String)
        let layers = try #require(json["layers"] as? [[String: Any]]).compactMap { $0["digest"] as? String }
        return (config, layers)
    }
}

extension String {
    var trimmingTrailingWhitespace: String {
        var s = self
        while let last = s.last, last == " " || last == "\t" { s.removeLast() }
        return s
    }
}

/// Parses JSON printed on stdout.
func jsonObject(_ r: CommandResult, sourceLocation: SourceLocation = #_sourceLocation) throws -> [String: Any] {
    let obj = try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8))
    return try #require(obj as? [String: Any], "stdout is not a JSON object:\n\(r)", sourceLocation: sourceLocation)
}
