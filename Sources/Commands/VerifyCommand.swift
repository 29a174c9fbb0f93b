import ArgumentParser
import Store

struct VerifyCommand: UDockerCommand {
    static let configuration = CommandConfiguration(commandName: "verify", abstract: "Verify a pulled image",
        discussion: "verify <repo/image:tag>: checks that every layer is present and matches its digest")
    @Argument(help: "repo/image:tag") var image: String

    func execute(_ context: CommandContext) async throws -> Int32 {
        let img = try LocalImageName(parsing: image)
        context.messages.info("verifying: \(img)")
        let problems = context.repository.verifyImage(img)
        for p in problems { context.messages.error(p) }
        if problems.isEmpty { context.messages.info("image Ok") ; return 0 }
        return 1
    }
}
