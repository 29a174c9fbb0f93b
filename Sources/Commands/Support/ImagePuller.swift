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
        options.transferLimits = TransferLimits(
            stallTimeout: Double(c["transfer_stall_timeout"]) ?? 30, minimumRate: Int64(c["transfer_min_rate"]) ?? 1024,
            rateWindow: Double(c["transfer_rate_window"]) ?? 60)
        options.pullTimeout = Double(c["pull_timeout"]) ?? 0
        // Waiting for response headers is bounded by the HTTP client's read timeout; a little
        // longer than the stall limit, so a body that stops is reported by the watchdog.
        if options.transferLimits.stallTimeout > 0 { options.readTimeout = Int64(options.transferLimits.stallTimeout.rounded(.up)) + 2 }
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
        return try await withRegistryClient { client, options in
            try await RegistryClient.withTimeLimit(options.pullTimeout) { [context] in
                try await Self.pull(ref, as: local, platform: plat, client: client, context: context)
            }
        }
    }

    private static func pull(
        _ ref: ImageReference, as local: LocalImageName, platform plat: Platform?, client: RegistryClient, context: CommandContext
    ) async throws -> LocalImageName {
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
