@testable import Commands
import Engines
import Foundation
import Testing

/// Every command's `--help` is generated from its definition: each visible option appears in
/// it, and the hand-written usage line names no option the command does not declare.
@Suite struct CommandLineDefinitionTests {
    /// The options a command declares (from swift-argument-parser's own description of it).
    static func declaredOptions(_ type: any UDockerCommand.Type) throws -> [(names: [String], visible: Bool)] {
        let json = try #require(try JSONSerialization.jsonObject(with: Data(type._dumpHelp().utf8)) as? [String: Any])
        let command = try #require(json["command"] as? [String: Any])
        return ((command["arguments"] as? [[String: Any]]) ?? []).compactMap { a in
            guard (a["kind"] as? String) != "positional" else { return nil }
            let names = ((a["names"] as? [[String: Any]]) ?? []).compactMap { n -> String? in
                guard let name = n["name"] as? String else { return nil }
                return (n["kind"] as? String) == "short" ? "-\(name)" : "--\(name)"
            }
            return (names, (a["shouldDisplay"] as? Bool) ?? true)
        }.filter { !$0.names.contains("--help") && !$0.names.contains("-h") }
    }

    @Test("every command name resolves to the command of that name, once")
    func dispatchNames() {
        #expect(Set(UDocker.commandNames).count == UDocker.commandNames.count)
        #expect(UDocker.commandNames.count == 31)
        for name in UDocker.commandNames {
            #expect(UDocker.command(named: name)?.configuration.commandName == name, "\(name)")
        }
        #expect(UDocker.command(named: "bogus") == nil)
        #expect(UDocker.commands.count == UDocker.commandNames.count)
    }

    @Test func everyVisibleOptionIsInTheCommandsHelp() throws {
        for (name, type) in UDocker.commands {
            let help = type.helpMessage(columns: 400)
            for option in try Self.declaredOptions(type) where option.visible {
                for n in option.names {
                    #expect(help.contains(n), "\(name) --help does not show \(n):\n\(help)")
                }
            }
        }
    }

    @Test func usageLinesNameOnlyDeclaredOptions() throws {
        for (name, type) in UDocker.commands {
            let declared = Set(try Self.declaredOptions(type).flatMap(\.names))
            let usage = type.configuration.discussion
            let regex = try NSRegularExpression(pattern: #"(?<![\w-])--[a-z][a-z-]*"#)
            for m in regex.matches(in: usage, range: NSRange(usage.startIndex..., in: usage)) {
                let option = String(usage[Range(m.range, in: usage)!])
                #expect(declared.contains(option), "\(name): the usage text names \(option), which is not an option of \(name)")
            }
        }
    }

    @Test func theRegistryFlagsAreOneGroupEverywhere() throws {
        for type in [PullCommand.self, SearchCommand.self, ManifestCommand.self, RunCommand.self] as [any UDockerCommand.Type] {
            let names = Set(try Self.declaredOptions(type).flatMap(\.names))
            #expect(names.isSuperset(of: ["--registry", "--index", "--httpproxy"]), "\(type)")
        }
    }

    @Test func versionListsEveryEngineFamily() throws {
        var env = EngineEnvironment(tmpDir: "/tmp", binDir: "/nonexistent/bin", hostEnvironment: ["PATH": "/nonexistent"])
        env.prootExecutable = "/bin/sh"
        let lines = VersionCommand.engineLines(ToolLocator(environment: env))
        #expect(
            lines.map { $0.split(separator: ":").first.map(String.init) ?? "" }
                == ["engine N1", "engine P1 P2", "engine F1 F2 F3 F4", "engine R1 R2 R3", "engine S1"])
        #expect(lines[1] == "engine P1 P2: /bin/sh", "an explicit tool is reported with its path: \(lines)")
        #expect(lines[3].hasPrefix("engine R1 R2 R3: not available ("), "nothing on PATH: \(lines)")
    }

    @Test func typedOptionsParseCaseInsensitivelyAndDropEmptyValues() throws {
        let setup = try #require(try SetupCommand.parse(SetupCommand.normalize(["--execmode=p1", "c"])) as? SetupCommand)
        #expect(setup.execmode == .P1)
        let unset = try #require(try SetupCommand.parse(SetupCommand.normalize(["--execmode", "", "c"])) as? SetupCommand)
        #expect(unset.execmode == nil && unset.container == "c")
        let create = try #require(try CreateCommand.parse(CreateCommand.normalize(["--storage", "OVERLAY", "img"])) as? CreateCommand)
        #expect(create.storage == .overlay)
        let run = try #require(try RunCommand.parse(RunCommand.normalize(["--pull=never", "--storage=", "img"])) as? RunCommand)
        #expect(run.pull == .never && run.storage == nil)
        #expect(throws: (any Error).self) { try RunCommand.parse(RunCommand.normalize(["--pull=sometimes", "img"])) }
        #expect(throws: (any Error).self) { try CreateCommand.parse(CreateCommand.normalize(["--storage=deep", "img"])) }
    }

    @Test func aBadValueIsOneLineNamingTheValidOnes() {
        do {
            _ = try SetupCommand.parse(["--execmode=Z9", "c"])
            Issue.record("Z9 was accepted")
        } catch {
            let line = UDocker.oneLine(SetupCommand.message(for: error))
            #expect(!line.contains("\n") && line.contains("'Z9'"), "\(line)")
            for mode in ExecutionMode.allCases { #expect(line.contains(mode.rawValue), "\(line)") }
        }
        #expect(UDocker.oneLine("Missing expected argument '<image>'\nHelp: …") == "Missing expected argument '<image>'")
    }
}
