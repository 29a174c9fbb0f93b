import ArgumentParser
import CLinux
import Engines
import UDockerSystem

/// `version`: udocker's three lines first (scripts parse `version: x.y.z`), then ours: the Swift
/// implementation's version and the build (commit, date, toolchain). `--engines` adds the engines
/// this host can run (file lookups and one user-namespace probe, a fork); without it `version`
/// starts no process and reads no file unless a configuration file exists (it may set `tarball`),
/// so it costs about what starting the binary costs.
struct VersionCommand: UDockerCommand {
    static let configuration = CommandConfiguration(
        commandName: "version", _superCommandName: "udocker",  // no completion-script search: see RunCommand
        abstract: "Print the version and the build (--engines: and the engines found on this host)",
        usage: "version [--engines]")
    static var needsRepository: Bool { false }
    @Flag(name: .customLong("engines"), help: "also list the engines this host can run (see also: udocker doctor)")
    var engines = false

    /// `version` and `version --engines` need nothing of ArgumentParser (a property wrapper made
    /// outside a parse cannot be read, hence the plain action).
    static func fastParse(_ args: [String]) -> (any CommandAction)? {
        args.isEmpty ? Action(engines: false) : args == ["--engines"] ? Action(engines: true) : nil
    }

    func execute(_ context: CommandContext) async throws -> Int32 { try await Action(engines: engines).execute(context) }

    struct Action: CommandAction {
        var engines: Bool
        func execute(_ context: CommandContext) async throws -> Int32 {
            VersionCommand.printVersion(tarball: context.configuration["tarball"])
            if engines {
                let lines = VersionCommand.engineLines(ToolLocator(environment: ModeResolver(context: context).engineEnvironment()))
                _ = FileDescriptorIO.write(1, lines.map { $0 + "\n" }.joined())
            }
            return 0
        }
    }

    /// udocker's lines plus ours, in one write to stdout (`print` costs a start-up a third more:
    /// its first call resolves the stream protocols at run time). `tarball`: the configured
    /// udockertools sources (udocker's published URLs unless configured otherwise), as udocker.
    static func printVersion(tarball: String) {
        let text = """
            version: \(UDocker.version)
            tarball: \(tarball)
            tarball_release: \(Configuration.udockerToolsRelease)
            udocker-swift: \(UDocker.swiftVersion) (compatible with udocker \(UDocker.version))
            build: commit \(String(cString: cl_build_commit())), date \(String(cString: cl_build_date())), \
            toolchain \(String(cString: cl_build_toolchain()))

            """
        _ = FileDescriptorIO.write(1, text)
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
            found("F1 F2 F3 F4", { try tools.fakechrootLibrary() }),
            found("R1 R2 R3", { try tools.ociRuntime() }),
            found("S1", tools.apptainer),
        ]
    }
}
