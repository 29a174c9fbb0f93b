import ArgumentParser
import CLinux
import Engines

/// `version`: udocker's three lines first (scripts parse `version: x.y.z`), then ours: the Swift
/// implementation's version, the build (commit, date, toolchain) and the engines this host can
/// run. Fast: file lookups and one user-namespace probe, no thread, no network.
struct VersionCommand: UDockerCommand {
    static let configuration = CommandConfiguration(
        commandName: "version", _superCommandName: "udocker",  // no completion-script search: see RunCommand
        abstract: "Print the version, the build and the engines found on this host", usage: "version")
    static var needsRepository: Bool { false }
    /// No options: nothing for ArgumentParser to do.
    static func fastParse(_ args: [String]) -> (any CommandAction)? { args.isEmpty ? VersionCommand() : nil }

    func execute(_ context: CommandContext) async throws -> Int32 {
        Self.printVersion()
        for line in Self.engineLines(ToolLocator(environment: ModeResolver(context: context).engineEnvironment())) { print(line) }
        return 0
    }

    /// udocker's lines plus ours (`-V`/`--version` print these, without the engine probe).
    static func printVersion() {
        print("version: \(UDocker.version)")
        print("tarball: (none: the Swift udocker needs no udockertools tarball)")
        print("tarball_release: 1.2.11")
        print("udocker-swift: \(UDocker.swiftVersion) (compatible with udocker \(UDocker.version))")
        print(
            "build: commit \(String(cString: cl_build_commit())), date \(String(cString: cl_build_date())), "
                + "toolchain \(String(cString: cl_build_toolchain()))")
    }

    /// One line per engine family: the modes and the tool they would use, or why not.
    static func engineLines(_ tools: ToolLocator) -> [String] {
        func found(_ modes: String, _ lookup: () throws -> ToolLocator.Tool) -> String {
            do { return "engine \(modes): \(try lookup().path)" } catch { return "engine \(modes): not available (\(error))" }
        }
        let native =
            HostProbe.userNamespaceProblem().map { "engine N1: not available (\($0))" }
            ?? "engine N1: user namespaces (built in)"
        return [
            native,
            found("P1 P2", tools.proot),
            found("F1 F2 F3 F4", tools.fakechrootLibrary),
            found("R1 R2 R3", { try tools.ociRuntime() }),
            found("S1", tools.apptainer),
        ]
    }
}
