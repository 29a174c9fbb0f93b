import Foundation
import Testing

/// The start-up rules of the run path, which profiles of `run /bin/true` put there (docs/benchmarks.md):
/// each construct below makes its first use pay a run-time lookup (metadata, conformances, key path
/// objects) that a run need not pay. The rules hold for the files a plain run executes; other
/// files (pull, create, doctor, ...) may use anything.
@Suite struct RunPathRulesTests {
    /// The files whose code a plain `udocker run CONTAINER CMD` executes (N1, a flat container,
    /// no config file), read from its call path: `main` → `UDocker` dispatch → `RunCommand.fastParse`
    /// → `RunArguments.execute` (repository, mode, scratch) → `EngineRunner` → `NativeEngine` and
    /// the shared plan. (A profile would be the better source: valgrind cannot read this
    /// toolchain's debug information.) A file that joins the run path joins this list.
    static let runPath: [String] = [
        "udocker/main.swift",
        "Commands/UDocker.swift", "Commands/RunCommand.swift", "Commands/RunArguments.swift",
        "Commands/RunArguments+Execute.swift", "Commands/Support/ArgumentNormalizer.swift",
        "Commands/Support/CommandContext.swift", "Commands/Support/Configuration.swift",
        "Commands/Support/ModeResolver.swift", "Commands/Support/Messages.swift",
        "Commands/Support/OutputRenderer.swift",
        "Engines/Engine.swift", "Engines/EngineSelector.swift", "Engines/EngineRunner.swift", "Engines/NativeEngine.swift",
        "Engines/ExecutionPlan.swift", "Engines/ExecutionPlan+Command.swift", "Engines/ExecutionPlan+Environment.swift",
        "Engines/ExecutionPlan+User.swift", "Engines/ExecutionPlan+Volumes.swift", "Engines/ChildProcess.swift",
        "Engines/RunScratch.swift", "Engines/MountPlan.swift", "Engines/JobEnvironment.swift", "Engines/MPICompatibility.swift",
        "Engines/ContainerInstance.swift", "Engines/RunOptions.swift", "Engines/EngineEnvironment.swift",
        "Engines/ExecutionMode.swift", "Engines/Capabilities.swift", "Engines/Banner.swift", "Engines/AuthFiles.swift",
        "Store/LocalRepository.swift", "Store/LocalRepository+Containers.swift", "ContainerModel/ExecutionMode.swift",
        "Store/ContainerRecord.swift", "ContainerModel/ContainerRecord.swift",
        "UDockerSystem/RootResolver.swift", "UDockerSystem/RootDirectory.swift", "UDockerSystem/TextFormat.swift",
        "UDockerSystem/PathName.swift", "UDockerSystem/FileInfo+Paths.swift", "UDockerSystem/AtomicFile.swift",
        "UDockerSystem/FileLock.swift", "UDockerSystem/Output.swift",
        "OCI/ImageConfig+Fast.swift", "OCI/ImageConfig.swift", "OCI/Digest.swift",
    ]

    /// The forbidden constructs: a name and a test on one line of code (comments and string
    /// literals blanked).
    static let rules: [(name: String, advice: String, matches: @Sendable (String) -> Bool)] = [
        (
            "key path", "write a closure: { $0.x } (the runtime builds each key path object on first use)",
            { $0.contains("\\") }
        ),
        (
            "generic joined", "use Format.joined (the generic joined resolves associated types on first use)",
            { $0.replacingOccurrences(of: "Format.joined(", with: "").contains(".joined(") }
        ),
        ("Set<Int>", "use a bit mask or an array (a Set<Int> instantiates its metadata on first use)", { $0.contains("Set<Int>") }),
        (
            "[UInt8]-keyed dictionary", "keep a list (a dictionary keyed by [UInt8] costs a conformance lookup)",
            { $0.replacingOccurrences(of: " ", with: "").contains("[[UInt8]:") }
        ),
    ]

    /// Lines of the run path that break a rule where the run does not reach: file → a piece of
    /// the line and why it may stay. An entry that no longer matches a finding is an error too.
    static let allowed: [String: [(line: String, why: String)]] = [
        "Commands/UDocker.swift": [
            ("trimmed(where: \\.isBlank)", "error advice: only after a failure"),
            ("values.joined(separator: \", \")", "error advice: only after a failure"),
        ],
        "Commands/Support/Configuration.swift": [
            ("let v = value.trimmed(where: \\.isBlank)", "a typed UDOCKER_* variable, only when one is set"),
            ("whereSeparator: \\.isNewline", "reading a config file, only when one exists"),
            ("let line = raw.trimmed(where: \\.isBlank)", "reading a config file, only when one exists"),
            ("let key = line[..<sep].trimmed(where: \\.isBlank)", "reading a config file, only when one exists"),
            ("var value = line[line.index(after: sep)...].trimmed(where: \\.isBlank)", "reading a config file, only when one exists"),
        ],
        "Commands/Support/OutputRenderer.swift": [("lines.map { \"\\u{1B}[2K\" + $0 }.joined", "progress lines: pull only")],
        "Engines/ExecutionPlan+Environment.swift": [
            ("whereSeparator: \\.isNewline", "--env-file only"),
            ("let line = raw.trimmed(where: \\.isBlank)", "--env-file only"),
            ("Self.isValidKey(Substring(k.trimmed(where: \\.isBlank)))", "--env-file only"),
            ("containerEnv.setIfAbsent(k.trimmed(where: \\.isBlank)", "--env-file only"),
        ],
        "Engines/EngineRunner.swift": [("next.skipped.joined", "the engine fallback: only when N1 cannot start")],
        "Engines/ExecutionPlan+User.swift": [("$0.allSatisfy(\\.isASCII) && $0.allSatisfy(\\.isNumber)", "-u uid:gid only")],
        "Engines/MountPlan.swift": [("\"/\" + parts.joined(separator: \"/\")", "a volume whose target is missing only")],
        "Engines/JobEnvironment.swift": [(".map(\\.container)", "a task of a job only (SLURM_*, OMPI_*)")],
        "Engines/MPICompatibility.swift": [("parts.prefix(2).joined(separator: \".\")", "an MPI launch only")],
        "ContainerModel/ExecutionMode.swift": [
            ("listed.map(\\.rawValue).joined", "the list of modes: an invalid mode's message only")
        ],
        "ContainerModel/ContainerRecord.swift": [
            ("lowers.reversed().joined(separator: \":\")", "the overlay option string: overlay containers only")
        ],
        "UDockerSystem/RootResolver.swift": [
            ("private var table: [[UInt8]: Int32]?", "from 32 directories on: extraction, not a run's lookups"),
            ("var t = [[UInt8]: Int32](minimumCapacity", "from 32 directories on: extraction, not a run's lookups"),
        ],
    ]

    static let sources = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Sources")

    /// `text` with comments and the text of string literals replaced by spaces, line breaks
    /// kept: what is left is code (the code of interpolations included).
    static func code(_ text: String) -> String {
        var scanner = CodeScanner(Array(text.utf8))
        scanner.code(untilParenthesis: false)
        return String(decoding: scanner.out, as: UTF8.self)
    }

    struct CodeScanner {
        let b: [UInt8]
        var out: [UInt8]
        var i = 0
        init(_ bytes: [UInt8]) { b = bytes; out = bytes }

        func at(_ k: Int, _ s: String) -> Bool {
            let u = Array(s.utf8)
            return k + u.count <= b.count && Array(b[k..<k + u.count]) == u
        }
        mutating func blank(_ from: Int, _ to: Int) {
            for k in from..<min(to, b.count) where b[k] != UInt8(ascii: "\n") { out[k] = UInt8(ascii: " ") }
        }

        /// Code up to the end, or up to the `)` that closes an interpolation (consumed).
        mutating func code(untilParenthesis: Bool) {
            var depth = 0
            while i < b.count {
                let c = b[i]
                if at(i, "//") {
                    let from = i
                    while i < b.count && b[i] != UInt8(ascii: "\n") { i += 1 }
                    blank(from, i)
                } else if at(i, "/*") {
                    let from = i
                    var nesting = 0
                    repeat {
                        if at(i, "/*") { nesting += 1; i += 2 } else if at(i, "*/") { nesting -= 1; i += 2 } else { i += 1 }
                    } while nesting > 0 && i < b.count
                    blank(from, i)
                } else if c == UInt8(ascii: "\"")
                    || (c == UInt8(ascii: "#") && i + 1 < b.count && (b[i + 1] == UInt8(ascii: "\"") || b[i + 1] == UInt8(ascii: "#")))
                {
                    var hashes = 0, j = i
                    while j < b.count && b[j] == UInt8(ascii: "#") { hashes += 1; j += 1 }
                    guard j < b.count && b[j] == UInt8(ascii: "\"") else { i = j; continue }  // `#if`, `##`: not a literal
                    i = j
                    string(hashes: hashes)
                } else if untilParenthesis && c == UInt8(ascii: "(") {
                    depth += 1; i += 1
                } else if untilParenthesis && c == UInt8(ascii: ")") {
                    i += 1
                    if depth == 0 { return }
                    depth -= 1
                } else {
                    i += 1
                }
            }
        }

        /// A string literal from its opening quote: its text blanked, its interpolations scanned as code.
        mutating func string(hashes: Int) {
            let multi = at(i, "\"\"\"")
            let close = (multi ? "\"\"\"" : "\"") + String(repeating: "#", count: hashes)
            let escape = "\\" + String(repeating: "#", count: hashes)
            i += multi ? 3 : 1
            var from = i
            while i < b.count && !at(i, close) {
                if at(i, escape) {
                    i += escape.utf8.count
                    if i < b.count && b[i] == UInt8(ascii: "(") {
                        blank(from, i + 1)
                        i += 1
                        code(untilParenthesis: true)
                        from = i
                    } else {
                        i += 1
                    }
                } else {
                    i += 1
                }
            }
            blank(from, i)
            i += close.utf8.count
        }
    }

    struct Finding: CustomStringConvertible {
        var file: String, line: Int, rule: String, advice: String, text: String
        var description: String {
            "Sources/\(file):\(line): \(rule) on the run path (\(advice)): \(text.trimmingCharacters(in: .whitespaces))"
        }
    }

    static func findings(in file: String, text: String) -> [Finding] {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        let codeLines = code(text).split(separator: "\n", omittingEmptySubsequences: false)
        var out: [Finding] = []
        for (n, line) in codeLines.enumerated() {
            for rule in rules where rule.matches(String(line)) {
                out.append(Finding(file: file, line: n + 1, rule: rule.name, advice: rule.advice, text: String(lines[n])))
            }
        }
        return out
    }

    @Test("the scanner sees code only: comments and string literals are blanked")
    func scannerSeesCodeOnly() {
        let text = #"""
            let a = "x\(y.joined())\\" // .joined(
            /* \.x /* nested */ Set<Int> */ let b = #"\.raw"# + """
                \.z
                """
            let c = xs.joined(separator: ",")
            #if os(Linux)
            let d = xs.contains(where: \.isEmpty)
            let e = "\(f(".joined(\\.x", g(1)))" + ".joined("
            """#
        let found = Self.findings(in: "t.swift", text: text).map { "\($0.line) \($0.rule)" }
        #expect(found == ["1 generic joined", "5 generic joined", "7 key path"], "\(found)")
    }

    @Test("no key paths, generic joined, Set<Int> or [UInt8]-keyed dictionary on the run path")
    func runPathRules() throws {
        var unused = Self.allowed.flatMap { file, entries in entries.map { "\(file): \($0.line)" } }
        var violations: [String] = []
        for file in Self.runPath {
            let url = Self.sources.appendingPathComponent(file)
            let text = try #require(try? String(contentsOf: url, encoding: .utf8), "the run path names a missing file: \(url.path)")
            for finding in Self.findings(in: file, text: text) {
                if let entry = Self.allowed[file]?.first(where: { finding.text.contains($0.line) }) {
                    unused.removeAll { $0 == "\(file): \(entry.line)" }
                } else {
                    violations.append(finding.description)
                }
            }
        }
        #expect(violations.isEmpty, "\n\(violations.joined(separator: "\n"))")
        #expect(unused.isEmpty, "allowed lines that no longer break a rule (remove them from RunPathRulesTests.allowed): \(unused)")
        for file in Self.allowed.keys { #expect(Self.runPath.contains(file), "allowed lines of a file not on the run path: \(file)") }
    }
}
