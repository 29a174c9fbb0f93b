import ArgumentParser
import Registry

struct ManifestCommand: UDockerCommand {
    static let configuration = CommandConfiguration(commandName: "manifest", abstract: "Print an image manifest or index from the registry",
        discussion: "manifest inspect [--platform=os/arch] <repo/image:tag>")
    @Option(name: .customLong("platform"), help: "resolve an index to the manifest of this platform") var platform: String?
    @Option(name: .customLong("registry"), help: "registry URL") var registry: String?
    @Option(name: .customLong("index"), help: "index URL") var index: String?
    @Option(name: .customLong("httpproxy"), help: "proxy URL") var httpproxy: String?
    @Argument(help: "inspect") var action: String
    @Argument(help: "image") var image: String

    func execute(_ context: CommandContext) async throws -> Int32 {
        guard action == "inspect" else { throw CommandFailure("manifest: unknown action '\(action)', expected: manifest inspect <image>") }
        let puller = ImagePuller(context: context, registry: registry, index: index, httpProxy: httpproxy)
        let client = try RegistryClient(options: puller.registryOptions())
        do {
            let doc = try await client.fetchManifestDocument(try ImageReference(parsing: image), platform: try ImagePuller.platform(platform))
            await client.shutdown()
            print(JSONOutput.pretty(doc))
            return 0
        } catch {
            await client.shutdown()
            throw error
        }
    }
}
