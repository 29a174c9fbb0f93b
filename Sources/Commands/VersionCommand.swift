import ArgumentParser

struct VersionCommand: UDockerCommand {
    static let configuration = CommandConfiguration(commandName: "version", abstract: "Print version information")
    static var needsRepository: Bool { false }

    func execute(_ context: CommandContext) async throws -> Int32 {
        Self.printVersion()
        return 0
    }

    static func printVersion() {
        print("version: \(UDocker.version)")
        print("tarball: (none: the Swift udocker needs no udockertools tarball)")
        print("tarball_release: 1.2.11")
    }
}
