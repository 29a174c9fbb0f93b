import ArgumentParser
import Store

struct NameCommand: UDockerCommand {
    static let configuration = CommandConfiguration(
        commandName: "name", abstract: "Give a name to a container",
        discussion: "name <container_id> <name>")
    @Argument(help: "container id") var container: String
    @Argument(help: "new name") var name: String

    func execute(_ context: CommandContext) async throws -> Int32 {
        let id = try context.containerID(container)
        try context.repository.setContainerName(id, name)
        return 0
    }
}
