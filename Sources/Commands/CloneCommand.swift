import ArgumentParser
import Store
import UDockerSystem

struct CloneCommand: UDockerCommand {
    static let configuration = CommandConfiguration(
        commandName: "clone", abstract: "Duplicate a container",
        discussion:
            "clone [--name=<name>] <container-id|name>\nA full copy (ROOT, metadata, execution mode) with a new id, printed on stdout.\nThe copy of an overlay container is a flat (udocker-compatible) container."
    )
    @Option(name: .customLong("name"), help: "name of the copy") var name: String?
    @Argument(help: "container id or name") var container: String

    func execute(_ context: CommandContext) async throws -> Int32 {
        let id = try context.containerID(container)
        let copy = try context.withMergedRoot(of: id) {
            try context.repository.cloneContainer(id, name: name, mergedRoot: $0, warn: context.messages.warning)
        }
        print(copy)
        return 0
    }
}
