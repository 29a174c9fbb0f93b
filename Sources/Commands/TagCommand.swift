import ArgumentParser
import Store

struct TagCommand: UDockerCommand {
    static let configuration = CommandConfiguration(
        commandName: "tag", abstract: "Tag an image",
        discussion: "tag <repo/image:tag> <repo2/image2:tag2>")
    @Argument(help: "source repo/image:tag") var source: String
    @Argument(help: "new repo/image:tag") var target: String

    func execute(_ context: CommandContext) async throws -> Int32 {
        try context.repository.tagImage(try LocalImageName(parsing: source), as: try LocalImageName(parsing: target))
        return 0
    }
}
