import ArgumentParser
import Store
import UDockerSystem

struct MkrepoCommand: UDockerCommand {
    static let configuration = CommandConfiguration(
        commandName: "mkrepo", abstract: "Create a repository in another location",
        discussion: "mkrepo <top-repo-dir>")
    static var needsRepository: Bool { false }
    @Argument(help: "directory (must not exist)") var directory: String

    func execute(_ context: CommandContext) async throws -> Int32 {
        guard !FileInfo.exists(directory) else { throw CommandFailure("directory already exists: \(directory)") }
        try LocalRepository(topDirectory: directory).create()
        return 0
    }
}
