import Foundation
import Testing

/// Issue 24, step 1: the shared plan and the commands ask an engine's declared capabilities and
/// traits (`EngineCapabilities`), never for a mode by name. Only an engine's own files, the
/// registry (`EngineSelector.swift`: the table and the automatic order) and the mode's own
/// definitions may name one.
@Suite struct SharedPlanTests {
    static let sources = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Sources").path
    static let engineFiles = [
        "NativeEngine", "RuncEngine", "PRootEngine", "FakechrootEngine", "FakechrootSetup", "SingularityEngine",
        "EngineSelector", "ExecutionMode",
    ]
    static let modes = ["N1", "P1", "P2", "F1", "F2", "F3", "F4", "R1", "R2", "R3", "S1"]

    /// Every `.N1`-style literal in the code lines of `text` (comments and string text aside: a
    /// mode named in a message is words, not a branch).
    static func modeLiterals(_ text: String) -> [String] {
        var found: [String] = []
        for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            var code = line.trimmingCharacters(in: .whitespaces)
            if code.hasPrefix("//") { continue }
            if let comment = code.range(of: " //") { code = String(code[..<comment.lowerBound]) }
            // Drop string literals (no escaped quotes in the lines that matter here).
            var outside = "", inString = false
            for c in code {
                if c == "\"" { inString.toggle(); continue }
                if !inString { outside.append(c) }
            }
            for m in modes {
                var rest = Substring(outside)
                while let r = rest.range(of: "." + m) {
                    let after = rest[r.upperBound...].first
                    if after.map({ !($0.isLetter || $0.isNumber || $0 == "_") }) ?? true {
                        found.append("line \(number + 1): .\(m)")
                    }
                    rest = rest[r.upperBound...]
                }
            }
        }
        return found
    }

    @Test("the literal scanner finds a mode tested by name, not one named in a message or comment")
    func scannerCanFail() {
        #expect(Self.modeLiterals("if mode == .R1, x {") == ["line 1: .R1"])
        #expect(Self.modeLiterals("let f = [.F1, .F2].contains(mode)").count == 2)
        #expect(Self.modeLiterals("warn(\"use N1 or .P1 there\") // or .R1").isEmpty)
        #expect(Self.modeLiterals("x.N12").isEmpty)
    }

    @Test("no file of the shared plan or the commands names a mode")
    func noModeLiteralsOutsideTheEngines() throws {
        var problems: [String] = []
        for module in ["Engines", "Commands"] {
            let dir = Self.sources + "/" + module
            let files = try #require(FileManager.default.enumerator(atPath: dir)).compactMap { $0 as? String }
                .filter { $0.hasSuffix(".swift") }
            #expect(!files.isEmpty, "no sources under \(dir)")
            for file in files.sorted() {
                let base = (file as NSString).lastPathComponent
                if Self.engineFiles.contains(where: { base.hasPrefix($0 + ".") || base.hasPrefix($0 + "+") }) { continue }
                let text = try String(contentsOfFile: dir + "/" + file, encoding: .utf8)
                problems += Self.modeLiterals(text).map { "\(module)/\(file) \($0)" }
            }
        }
        #expect(problems.isEmpty, "ask an EngineCapabilities trait instead:\n\(problems.joined(separator: "\n"))")
    }

    /// Issue 24, step 2: Store alone changes a container's layout and writes its metadata; the
    /// engines get a recorder (`ContainerInstance.recordMode`) and a copy step
    /// (`LocalRepository.flattenOverlay`).
    @Test("no engine file writes a container's metadata or layout itself")
    func storeAloneChangesTheLayout() throws {
        let dir = Self.sources + "/Engines"
        let files = try #require(FileManager.default.enumerator(atPath: dir)).compactMap { $0 as? String }
            .filter { $0.hasSuffix(".swift") }
        var problems: [String] = []
        for file in files.sorted() {
            let text = try String(contentsOfFile: dir + "/" + file, encoding: .utf8)
            for needle in ["ContainerMetadata.", "setExecutionMode(", "containerRoot(", "overlayLayout("] where text.contains(needle) {
                problems.append("\(file): \(needle)")
            }
        }
        #expect(problems.isEmpty, "\(problems)")
    }
}
