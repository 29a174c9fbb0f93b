import OCI
import ArgumentParser
import Registry

struct ManifestCommand: UDockerCommand {
    static let configuration = CommandConfiguration(
        commandName: "manifest", abstract: "Print an image manifest or index from the registry",
        discussion: "manifest inspect [--platform=os/arch] <repo/image:tag>")
    @Option(name: .customLong("platform"), help: "resolve an index to the manifest of this platform") var platform: String?
    @OptionGroup var registryFlags: RegistryFlags
    @Argument(help: "inspect") var action: String
    @Argument(help: "image") var image: String

    func execute(_ context: CommandContext) async throws -> Int32 {
        guard action == "inspect" else { throw CommandFailure("manifest: unknown action '\(action)', expected: manifest inspect <image>") }
        let doc = try await ImagePuller(context: context, flags: registryFlags).withRegistryClient { client, _ in
            try await client.fetchManifestDocument(try ImageReference(parsing: image), platform: try ImagePuller.platform(platform))
        }
        print(JSONOutput.pretty(doc))
        return 0
    }
}
