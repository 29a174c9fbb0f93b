import ArgumentParser
import Store

struct UnprotectCommand: UDockerCommand {
    static let configuration = CommandConfiguration(
        commandName: "unprotect", abstract: "Remove the protection of a container or an image tag",
        discussion: "unprotect <container-id|name|repo/image:tag>")
    @Argument(help: "container or image") var target: String

    func execute(_ context: CommandContext) async throws -> Int32 {
        try Protection.set(target, false, context)
        return 0
    }
}
