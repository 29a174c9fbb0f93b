import ArgumentParser

struct PullCommand: UDockerCommand {
    static let configuration = CommandConfiguration(
        commandName: "pull", abstract: "Pull a container image from a registry",
        discussion: "pull [--platform=os/arch[/variant]] [--registry=url] [--index=url] [--httpproxy=url] <repo/image:tag|name@digest>")
    @Option(name: .customLong("platform"), help: "os/architecture[/variant], e.g. linux/arm64") var platform: String?
    @OptionGroup var registryFlags: RegistryFlags
    @Argument(help: "image") var image: String

    func execute(_ context: CommandContext) async throws -> Int32 {
        _ = try await ImagePuller(context: context, flags: registryFlags).pull(image, platform: platform)
        return 0
    }
}
