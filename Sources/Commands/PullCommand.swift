import ArgumentParser

struct PullCommand: UDockerCommand {
    static let configuration = CommandConfiguration(commandName: "pull", abstract: "Pull a container image from a registry",
        discussion: "pull [--platform=os/arch[/variant]] [--registry=url] [--index=url] [--httpproxy=url] <repo/image:tag|name@digest>")
    @Option(name: .customLong("platform"), help: "os/architecture[/variant], e.g. linux/arm64") var platform: String?
    @Option(name: .customLong("registry"), help: "registry URL for names without a host") var registry: String?
    @Option(name: .customLong("index"), help: "index URL") var index: String?
    @Option(name: .customLong("httpproxy"), help: "proxy URL (http:// or socks5://)") var httpproxy: String?
    @Argument(help: "image") var image: String

    func execute(_ context: CommandContext) async throws -> Int32 {
        let local = try await ImagePuller(context: context, registry: registry, index: index, httpProxy: httpproxy)
            .pull(image, platform: platform)
        context.messages.info("pulled \(local)")
        return 0
    }
}
