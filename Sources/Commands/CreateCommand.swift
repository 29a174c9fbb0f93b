import ArgumentParser
import Store
import UDockerSystem

struct CreateCommand: UDockerCommand {
    static let configuration = CommandConfiguration(
        commandName: "create", abstract: "Extract image layers and create a container",
        discussion: "create [--name=<container-name>] [--force] [--storage=flat|overlay] <repo/image:tag>")
    @Option(name: .customLong("name"), help: "set the name of the container") var name: String?
    @Flag(name: .customLong("force"), help: "create even if the name already exists (the name is not set)") var force = false
    @Option(name: .customLong("storage"), help: "flat (udocker-compatible ROOT, default) or overlay (shared layer cache, N1)") var storage:
        ContainerStorage?
    @Argument(help: "repo/image:tag") var image: String

    func execute(_ context: CommandContext) async throws -> Int32 {
        let img = try LocalImageName(parsing: image)
        guard context.repository.imageExists(img) else { throw CommandFailure("image not found: \(img) (pull it first)") }
        var alias = name
        if let n = name, force, context.repository.containerID(n) != nil {
            context.messages.warning("container name already exists, not set: \(n)")
            alias = nil
        }
        let kind = try context.configuration.containerStorage(option: storage)
        let id = try context.repository.createContainer(from: img, name: alias, storage: kind, warn: context.messages.warning)
        print(id)
        return 0
    }
}
