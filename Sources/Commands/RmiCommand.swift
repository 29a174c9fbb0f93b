import ArgumentParser
import Store

struct RmiCommand: UDockerCommand {
    static let configuration = CommandConfiguration(commandName: "rmi", abstract: "Delete an image",
        discussion: "rmi [-f] <repo/image:tag>. Layers still used by another tag are kept; containers are independent of the image.")
    @Flag(name: .customShort("f"), help: "ignore errors removing layer files") var force = false
    @Argument(help: "repo/image:tag") var image: String

    func execute(_ context: CommandContext) async throws -> Int32 {
        let img = try LocalImageName(parsing: image)
        context.messages.info("deleting image: \(img)")
        let users = context.repository.listContainers().filter { $0.image == img.description }
        if !users.isEmpty {
            context.messages.warning("image \(img) is used by \(users.count) container(s): they keep working (\(users.map(\.id).joined(separator: ", ")))")
        }
        try context.repository.removeImage(img, force: force)
        return 0
    }
}
