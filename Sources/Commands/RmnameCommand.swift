import ArgumentParser
import Store
import UDockerSystem

struct RmnameCommand: UDockerCommand {
    static let configuration = CommandConfiguration(
        commandName: "rmname", abstract: "Remove a name from a container",
        discussion: "rmname <name>")
    @Argument(help: "name") var name: String

    func execute(_ context: CommandContext) async throws -> Int32 {
        try context.repository.removeContainerName(name)
        context.messages.info("container name: \(name) removed.")
        return 0
    }
}
