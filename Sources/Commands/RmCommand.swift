import ArgumentParser
import Store
import UDockerSystem

struct RmCommand: UDockerCommand {
    static let configuration = CommandConfiguration(
        commandName: "rm", abstract: "Delete containers",
        discussion: "rm [-f] <container-id|name>...")
    @Flag(name: .customShort("f"), help: "force removal (permissions are always fixed)") var force = false
    @Argument(help: "container ids or names") var containers: [String] = []

    func execute(_ context: CommandContext) async throws -> Int32 {
        guard !containers.isEmpty else { throw CommandFailure("must specify a container id or name") }
        var status: Int32 = 0
        for c in containers {
            do {
                let id = try context.containerID(c)
                // said only once done: nothing about deleting before refusing a protected or running one
                try context.repository.removeContainer(id)
                context.messages.info("deleted container: \(id)")
            } catch {
                context.messages.error("\(error)")
                status = 1
            }
        }
        return status
    }
}
