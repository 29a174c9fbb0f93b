import ArgumentParser
import FoundationEssentials
import Registry

/// `--registry`, `--index`, `--httpproxy`: declared once for pull, manifest, search and run.
struct RegistryFlags: ParsableArguments {
    @Option(name: .customLong("registry"), help: "registry URL for names without a host") var registry: String?
    @Option(name: .customLong("index"), help: "index URL") var index: String?
    @Option(name: .customLong("httpproxy"), help: "proxy URL (http:// or socks5://)") var httpproxy: String?
}

extension ImagePuller {
    init(context: CommandContext, flags: RegistryFlags) {
        self.init(context: context, registry: flags.registry, index: flags.index, httpProxy: flags.httpproxy)
    }

    /// Runs `body` with a client made from the configuration and these flags, and shuts the
    /// client down on every path.
    func withRegistryClient<T>(_ body: (RegistryClient, RegistryOptions) async throws -> T) async throws -> T {
        let options = registryOptions()
        let client = try RegistryClient(options: options)
        do {
            let result = try await body(client, options)
            await client.shutdown()
            return result
        } catch {
            await client.shutdown()
            throw error
        }
    }
}
