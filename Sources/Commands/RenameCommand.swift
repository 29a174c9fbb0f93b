import ArgumentParser
import Store

struct RenameCommand: UDockerCommand {
    static let configuration = CommandConfiguration(
        commandName: "rename", abstract: "Change the name of a container",
        discussion: "rename <name> <new_name>")
    @Argument(help: "current name") var name: String
    @Argument(help: "new name") var newName: String

    func execute(_ context: CommandContext) async throws -> Int32 {
        try context.repository.renameContainer(name, to: newName)
        return 0
    }
}
