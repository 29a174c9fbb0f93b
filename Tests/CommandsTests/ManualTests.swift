import ArgumentParser
@testable import Commands
import Engines
import Foundation
import Testing

/// The man page and the completion scripts are generated from the command table: every command
/// and every option a command declares must appear in each of them.
@Suite struct ManualTests {
    static let page = Manual.manPage()

    /// Long option names each command declares (from swift-argument-parser's own description).
    static func declaredOptions() -> [(command: String, option: String)] {
        Manual.commandInfos().flatMap { info in
            info.options.flatMap { $0.names.filter { $0.hasPrefix("--") } }.map { (info.name, $0) }
        }
    }

    @Test func everyCommandHasASectionInTheManPage() {
        #expect(Manual.commandNames.count == UDocker.commands.count)
        for name in Manual.commandNames {
            #expect(Self.page.contains(".SS \(Manual.roff(name))\n"), "man page lacks command \(name)")
        }
    }

    @Test func everyOptionAppearsInTheManPage() {
        let options = Self.declaredOptions()
        #expect(options.count > 40, "too few options found: \(options.count)")
        for (command, option) in options {
            #expect(Self.page.contains(Manual.roff(option)), "man page lacks \(command) \(option)")
        }
    }

    @Test func manPageIsWellFormedRoff() {
        #expect(Self.page.hasPrefix(".TH UDOCKER 1 "))
        for section in [
            "NAME", "SYNOPSIS", "DESCRIPTION", "GENERAL OPTIONS", "COMMANDS", "EXECUTION MODES", "ENVIRONMENT", "EXIT STATUS", "FILES",
        ] {
            #expect(Self.page.contains(".SH \(section)\n"), "missing section \(section)")
        }
        for mode in ExecutionMode.allCases { #expect(Self.page.contains("\\fB\(mode.rawValue)\\fR")) }
        // No line of text may start a roff request by accident.
        for line in Self.page.split(separator: "\n") where line.hasPrefix(".") {
            let request = line.dropFirst().prefix { $0 != " " }
            #expect(["TH", "SH", "SS", "TP", "PP", "B"].contains(String(request)), "stray request: \(line)")
        }
    }

    @Test(arguments: [CompletionShell.bash, .zsh, .fish])
    func completionsNameEveryCommandAndOption(_ shell: CompletionShell) {
        let script = ManualRoot.completionScript(for: shell)
        #expect(script.count > 1000)
        for name in Manual.commandNames {
            #expect(script.contains(name), "\(shell) completion lacks command \(name)")
        }
        for (command, option) in Self.declaredOptions() {
            // fish writes long options without their dashes (`-l name`).
            let needle = shell == .fish ? String(option.dropFirst(2)) : option
            #expect(script.contains(needle), "\(shell) completion lacks \(command) \(option)")
        }
        for general in ["--repo", "--config", "--debug", "--insecure"] {
            #expect(script.contains(shell == .fish ? String(general.dropFirst(2)) : general))
        }
    }

    @Test func generatorEntryPointsRefuseUnknownShells() {
        #expect(Manual.run("_completion", ["tcsh"]) == 1)
        #expect(Manual.run("_completion", []) == 1)
        #expect(Manual.run("pull", []) == nil)
    }
}

/// groff itself must read the page without a warning (`-ww` enables all of them).
@Suite struct ManPageRenderingTests {
    static let groff = ["/usr/bin/groff", "/bin/groff"].first { FileManager.default.isExecutableFile(atPath: $0) }

    @Test(.enabled(if: groff != nil, "groff is not installed (Debian package groff-base, installed by scripts/test-deps.sh)"))
    func groffRendersItWithoutWarnings() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.groff!)
        process.arguments = ["-man", "-Tutf8", "-ww", "-z"]
        let input = Pipe(), errors = Pipe()
        process.standardInput = input
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        input.fileHandleForWriting.write(Data(Manual.manPage().utf8))
        try input.fileHandleForWriting.close()
        let warnings = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        #expect(warnings.isEmpty, "groff: \(warnings)")
    }
}
