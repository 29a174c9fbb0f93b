import ContainerModel
import ArgumentParser
import FoundationEssentials
import Store
import UDockerSystem

struct RmiCommand: UDockerCommand {
    static let configuration = CommandConfiguration(
        commandName: "rmi", abstract: "Delete an image",
        discussion: """
            rmi [-f] <repo/image:tag>. Layers still used by another tag are kept; containers are independent of the image.
            rmi --prune [-f]: delete every layer no tag references and the leftovers of interrupted
            commands (staging directories, partial downloads, dangling container names), and the
            extracted layers of the layer cache that no overlay container uses. Without -f,
            unreferenced layers younger than 10 minutes are kept (a pull may be about to tag them).
            """)
    @Flag(name: .customShort("f"), help: "ignore errors removing layer files; with --prune, no grace period") var force = false
    @Flag(name: .customLong("prune"), help: "remove unreferenced layers and leftovers of interrupted commands") var prune = false
    @Argument(help: "repo/image:tag") var image: String?

    func execute(_ context: CommandContext) async throws -> Int32 {
        if prune {
            if let image { try remove(image, context) }
            let r = try context.repository.prune(grace: force ? 0 : 600)
            for p in r.removedLayers { context.messages.info("removed unreferenced layer: \(PathName.lastComponent(p))") }
            for p in r.removedLeftovers { context.messages.info("removed leftover: \(p)") }
            for p in r.removedCachedLayers { context.messages.info("removed unused extracted layer: \(PathName.lastComponent(p))") }
            if !r.keptRecent.isEmpty {
                context.messages.info("kept \(r.keptRecent.count) recent unreferenced layer(s); use -f to remove them too")
            }
            context.messages.info(
                "pruned \(r.removedLayers.count) layer(s), \(r.freedBytes / (1 << 20)) MB; \(r.removedLeftovers.count) leftover(s)")
            return 0
        }
        guard let image else { throw CommandFailure("must specify an image (or --prune)") }
        try remove(image, context)
        return 0
    }

    private func remove(_ image: String, _ context: CommandContext) throws {
        let img = try LocalImageName(parsing: image)
        let users = context.repository.listContainers().filter { $0.image == img.description }
        try context.repository.removeImage(img, force: force)
        context.messages.info("deleted image: \(img)")
        if !users.isEmpty {
            context.messages.warning(
                "image \(img) was used by \(users.count) container(s): they keep working (\(users.map(\.id).joined(separator: ", ")))")
        }
    }
}
