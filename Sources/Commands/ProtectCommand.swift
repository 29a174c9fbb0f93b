import ArgumentParser
import Store

struct ProtectCommand: UDockerCommand {
    static let configuration = CommandConfiguration(
        commandName: "protect", abstract: "Protect a container or an image tag against deletion",
        discussion: "protect <container-id|name|repo/image:tag>")
    @Argument(help: "container or image") var target: String

    func execute(_ context: CommandContext) async throws -> Int32 {
        try Protection.set(target, true, context)
        return 0
    }
}

enum Protection {
    static func set(_ target: String, _ on: Bool, _ context: CommandContext) throws {
        if let id = context.repository.containerID(target) {
            try context.repository.setContainerProtected(id, on)
        } else {
            try context.repository.setImageProtected(try LocalImageName(parsing: target), on)
        }
    }
}
