import FoundationEssentials
import OCI
import Registry
import Store
import UDockerSystem

/// `pull`, shared with `run IMAGE`: resolve the manifest for the platform, fetch the blobs in
/// parallel with digest verification, then publish the tag.
struct ImagePuller {
    var context: CommandContext
    var registry: String?
    var index: String?
    var httpProxy: String?

    func registryOptions() -> RegistryOptions {
        let c = context.configuration
        let home = context.environment["HOME"] ?? FileInfo.homeDirectory()
        let dockerConfig = context.environment["DOCKER_CONFIG"].map { "\($0)/config.json" } ?? "\(home)/.docker/config.json"
        let credentials = CredentialStore(udockerKeystore: c["keystore"], dockerConfig: dockerConfig)
        for w in credentials.warnings { context.messages.warning(w) }
        var registryURL = registry ?? c.path("dockerio_registry_url")
        if registryURL == RegistryOptions.dockerHubRegistry { registryURL = nil }
        var options = RegistryOptions(
            registryURL: registryURL, indexURL: index ?? c.path("dockerio_index_url"),
            insecure: c.insecure, httpProxy: httpProxy ?? c.path("http_proxy"),
            parallelism: max(1, Int(c["pull_parallelism"]) ?? 4), credentials: credentials)
        if let text = c.path("docker_registries") {
            if let map = RegistryOptions.parseRegistryMap(text) {
                options.registryMap = map
            } else {
                context.messages.warning("ignoring docker_registries: expected {\"host\": [\"registry URL\", \"index URL\"]}")
            }
        }
        return options
    }

    static func platform(_ spec: String?) throws -> Platform? {
        guard let spec, !spec.isEmpty else { return nil }
        return try Platform(parsing: spec)
    }

    func pull(_ spec: String, platform: String?) async throws -> LocalImageName {
        let ref = try ImageReference(parsing: spec)
        let plat = try Self.platform(platform)
        let local = try LocalImageName(validating: ref.localName, tag: ref.localTag)
        return try await withRegistryClient { client, _ in
            let resolved = try await client.resolveImage(ref, platform: plat)
            let repo = context.repository
            // The config was fetched and verified while resolving: store it without a second GET.
            try repo.blobStore.store(resolved.configBytes, as: resolved.manifest.config)
            let layers = resolved.manifest.layers, bytes = layers.reduce(Int64(0)) { $0 + max(0, $1.size) }
            let output = context.messages
            output.progress(.pullStarted(image: "\(local)", blobs: layers.count, bytes: bytes))
            try await client.fetchBlobs(ref, layers, into: repo.blobStore) { output.progress($0) }
            try repo.storeV2Image(
                local, manifest: resolved.manifestBytes,
                blobs: layers.map(\.digest) + [resolved.manifest.config.digest])
            output.progress(.pullFinished(image: "\(local)", bytes: bytes))
            return local
        }
    }
}
