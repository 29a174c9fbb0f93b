import AsyncHTTPClient
import FoundationEssentials
import NIOCore
import NIOHTTP1
import OCI
import UDockerSystem

/// Where to send requests for one image: `<scheme>://<hostPort>/v2/<repository>/…`.
struct Endpoint: Sendable, Hashable {
    var origin: Origin
    /// The repository as requested (`library/` added for Docker Hub single-component names).
    var repository: String
    /// The reference as the user wrote it, for messages.
    var display: String
    /// The repository as typed when `library/` was added for a registry that may not use that
    /// namespace (a configured site registry): tried when `library/<name>` does not exist.
    var unprefixed: String? = nil
    /// A scope other than pulling `repository` (`registry:catalog:*` for search).
    var scopeOverride: String? = nil

    var base: String { "\(origin.scheme)://\(origin.hostPort)" }
    var scope: String { scopeOverride ?? "repository:\(repository):pull" }
    var host: String { origin.hostPort }
}

extension RegistryClient {
    func endpoint(for ref: ImageReference) async throws -> Endpoint {
        var origin: Origin
        let mapped =
            ref.registry.map { options.registryMap[$0.lowercased()] }
            ?? (options.registryURL == nil ? options.registryMap["docker.io"] : nil)
        if let mapped {
            guard let o = RegistryClient.parseBaseURL(mapped) else {
                throw RegistryError.invalidOption("invalid registry URL '\(mapped)' in docker_registries")
            }
            origin = o
        } else if let reg = ref.registry {
            if CredentialStore.dockerHubAliases.contains(reg.lowercased()) {
                origin = Origin(RegistryOptions.dockerHubRegistry)!
            } else {
                let scheme = isLoopbackHost(hostPart(of: reg)) ? "http" : "https"
                guard let o = Origin("\(scheme)://\(reg)") else {
                    throw RegistryError.invalidOption("invalid registry host '\(reg)'")
                }
                origin = o
            }
        } else {
            origin = RegistryClient.parseBaseURL(options.registryURL ?? RegistryOptions.dockerHubRegistry)!
        }
        try refusePlainHTTPToRemote(origin)
        // One-word names are official images: `library/<name>` on Docker Hub, and on the
        // registry configured for names without a host (mirrors, site registries).
        var repo = ref.repository
        let officialNamespace =
            CredentialStore.dockerHubAliases.contains(origin.host) || ref.registry == nil
            || ref.registry.map { CredentialStore.dockerHubAliases.contains($0.lowercased()) } == true
        var unprefixed: String?
        if officialNamespace && !repo.contains("/") {
            repo = "library/" + repo
            if !CredentialStore.dockerHubAliases.contains(origin.host) { unprefixed = ref.repository }
        }
        if let chosen = await auth.repository(for: "\(origin.hostPort) \(ref.repository)") { repo = chosen; unprefixed = nil }
        if options.insecure && origin.scheme == "https" && !origin.isLoopback {
            if let s = await auth.scheme(for: origin.hostPort) { origin.scheme = s } else { origin = await probeScheme(origin) }
        }
        return Endpoint(origin: origin, repository: repo, display: ref.description, unprefixed: unprefixed)
    }

    /// Plain http to a host other than this one carries tokens and credentials in clear: only
    /// with `--insecure`.
    func refusePlainHTTPToRemote(_ origin: Origin) throws {
        if origin.scheme == "http" && !origin.isLoopback && !options.insecure {
            throw RegistryError.invalidOption(
                "refusing plain http to \(origin.hostPort): tokens and credentials would travel in clear (use https://, or --insecure for a registry you trust)"
            )
        }
    }

    /// The same rule for a file download (`install`'s udockertools tarball, `import URL`): over
    /// plain http anyone on the way can replace what udocker installs or imports, and then runs.
    func refusePlainHTTPDownload(_ origin: Origin) throws {
        if origin.scheme == "http" && !origin.isLoopback && !options.insecure {
            throw RegistryError.invalidOption(
                "refusing plain http to \(origin.hostPort): the download could be replaced on the way (use https://, or --insecure for a server you trust)"
            )
        }
    }

    /// Runs `body` on `endpoint`; when the repository is `library/<name>` added for a site
    /// registry and does not exist there, runs it again on `<name>` and remembers that choice for
    /// the rest of the pull.
    func withOfficialFallback<T>(_ endpoint: Endpoint, _ body: (Endpoint) async throws -> T) async throws -> T {
        do { return try await body(endpoint) } catch RegistryError.imageNotFound(let name) {
            guard let plain = endpoint.unprefixed else { throw RegistryError.imageNotFound(name) }
            var other = endpoint
            other.repository = plain; other.unprefixed = nil
            logger.debug("\(endpoint.host): no repository \(endpoint.repository); trying \(plain)")
            let result = try await body(other)
            await auth.setRepository(plain, for: "\(endpoint.host) \(plain)")
            return result
        }
    }

    /// `--insecure`: try `GET /v2/` over https (unverified); on a connection failure use http.
    private func probeScheme(_ origin: Origin) async -> Origin {
        var req = HTTPClientRequest(url: "https://\(origin.hostPort)/v2/")
        req.headers.add(name: "User-Agent", value: options.userAgent)
        var chosen = origin
        do {
            let r = try await client(for: "https://\(origin.hostPort)/").execute(req, timeout: .seconds(options.connectTimeout + 5))
            _ = try? await r.body.collect(upTo: RegistryClient.errorBodyLimit)
        } catch {
            if let o = Origin(
                "http://\(origin.host.contains(":") ? "[\(origin.host)]" : origin.host)\(origin.port == 443 ? "" : ":\(origin.port)")")
            {
                logger.debug("https to \(origin.hostPort) failed (\(RegistryClient.describe(error))); using http")
                chosen = o
            }
        }
        await auth.setScheme(chosen.scheme, for: origin.hostPort)
        return chosen
    }
}
