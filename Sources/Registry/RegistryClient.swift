import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import OCI
import System

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

/// Bearer tokens per registry and scope, Basic credentials per registry. Lives as long as the
/// client, so one pull reuses one token for its manifest and all its blobs.
actor AuthCache {
    private var bearer: [String: String] = [:]
    private var basic: [String: String] = [:]
    private var schemeOverride: [String: String] = [:]

    func header(host: String, scope: String) -> String? {
        if let t = bearer["\(host) \(scope)"] { return "Bearer \(t)" }
        if let b = basic[host] { return "Basic \(b)" }
        return nil
    }
    func setBearer(_ token: String, host: String, scope: String) { bearer["\(host) \(scope)"] = token }
    func setBasic(_ auth: String, host: String) { basic[host] = auth }
    /// Repository names chosen after a `library/` fallback, per "host typed-name".
    private var repositories: [String: String] = [:]
    func repository(for key: String) -> String? { repositories[key] }
    func setRepository(_ r: String, for key: String) { repositories[key] = r }
    func scheme(for host: String) -> String? { schemeOverride[host] }
    func setScheme(_ s: String, for host: String) { schemeOverride[host] = s }
}

/// The result of resolving a reference to one platform's image.
public struct ResolvedImage: Sendable {
    public var manifest: Manifest
    public var manifestBytes: [UInt8]
    public var manifestDigest: Digest
    public var config: ImageConfig
    public var configBytes: [UInt8]
    /// The index the manifest was chosen from, when the tag named one.
    public var indexBytes: [UInt8]?

    /// The config followed by the layers: what `fetchBlobs` needs for a pull.
    public var blobs: [Descriptor] { [manifest.config] + manifest.layers }
}

/// A Docker registry v2 / OCI distribution client for pulling.
///
/// Transport rules: a typed registry host is reached over `https://`, except loopback hosts
/// (127.0.0.0/8, ::1, localhost) which use plain `http://`. With `insecure`, TLS verification is
/// off and a non-loopback host that fails over https is retried once over http (remembered for
/// the client's lifetime). Basic credentials never travel over plain HTTP to a non-loopback host.
/// Redirects are followed by hand (at most 5), and `Authorization` is dropped for good once a
/// redirect leaves the registry's origin.
public final class RegistryClient: Sendable {
    let options: RegistryOptions
    /// Direct connections.
    let http: HTTPClient
    /// One client per proxy in use (`ProxySettings`).
    let proxied: [String: HTTPClient]
    let proxies: ProxySettings
    let auth = AuthCache()
    var logger: Output { Output() }

    static let manifestLimit = 4 << 20
    static let tokenLimit = 1 << 20
    static let configLimit: Int64 = 8 << 20
    static let errorBodyLimit = 64 << 10
    static let maxRedirects = 5

    public init(options: RegistryOptions) throws {
        var options = options
        options.parallelism = max(1, options.parallelism)
        options.maxAttempts = max(1, options.maxAttempts)
        if let r = options.registryURL {
            guard RegistryClient.parseBaseURL(r) != nil else {
                throw RegistryError.invalidOption("invalid registry URL '\(r)'")
            }
        }
        self.options = options
        var config: HTTPClient.Configuration
        if options.insecure {
            config = HTTPClient.Configuration(certificateVerification: .none)
        } else {
            config = HTTPClient.Configuration(certificateVerification: .fullVerification)
            // Sites with intercepting proxies or private CAs: honour SSL_CERT_FILE / SSL_CERT_DIR
            // in addition to the system roots.
            let extra = ExtraTrustRoots.load(environment: options.environment)
            for p in extra.problems { Output().debug("ignoring CA \(p)") }
            if !extra.certificates.isEmpty {
                config.tlsConfiguration?.additionalTrustRoots.append(.certificates(extra.certificates))
            }
        }
        config.redirectConfiguration = .disallow
        config.timeout = .init(connect: .seconds(options.connectTimeout), read: .seconds(options.readTimeout))
        config.connectionPool.retryConnectionEstablishment = false
        config.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = max(8, options.parallelism)
        config.decompression = .disabled
        http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: config)
        proxies = ProxySettings(explicit: options.httpProxy, environment: options.environment)
        var proxied: [String: HTTPClient] = [:]
        for p in proxies.all {
            var c = config
            c.proxy = try RegistryClient.parseProxy(p)
            proxied[p] = HTTPClient(eventLoopGroupProvider: .singleton, configuration: c)
        }
        self.proxied = proxied
    }

    /// The client for a request to `url`: through the proxy that applies to it, or direct.
    func client(for url: String) -> HTTPClient {
        guard let origin = Origin(url), let p = proxies.proxy(for: origin), let c = proxied[p] else { return http }
        return c
    }

    public func shutdown() async {
        try? await http.shutdown()
        for c in proxied.values { try? await c.shutdown() }
    }

    deinit {
        // `shutdown()` is the way to end a client; this only covers callers that forgot it.
        let clients = [http] + Array(proxied.values)
        Task { for c in clients { try? await c.shutdown() } }
    }

    // MARK: options parsing

    static func parseProxy(_ s: String) throws -> HTTPClient.Configuration.Proxy {
        let withScheme = s.contains("://") ? s : "http://\(s)"
        guard let u = URLComponents(string: withScheme), let scheme = u.scheme?.lowercased(),
              let host = u.host, !host.isEmpty else { throw RegistryError.unsupportedProxy(s) }
        switch scheme {
        case "http":
            let port = u.port ?? 80
            if let user = u.user {
                return .server(host: host, port: port,
                               authorization: .basic(username: user.removingPercentEncoding ?? user,
                                                     password: (u.password ?? "").removingPercentEncoding ?? ""))
            }
            return .server(host: host, port: port)
        case "socks5", "socks5h", "socks":
            guard u.user == nil else { throw RegistryError.unsupportedProxy("\(scheme)://…: SOCKS authentication") }
            return .socksServer(host: host, port: u.port ?? 1080)
        default:
            throw RegistryError.unsupportedProxy("\(scheme)://\(host)")
        }
    }

    /// `host[:port]`, `http(s)://host[:port][/]` → origin. Paths are ignored.
    static func parseBaseURL(_ s: String) -> Origin? {
        let trimmed = s.trimmingCharacters(in: .whitespaces)
        return Origin(trimmed.contains("://") ? trimmed : "https://\(trimmed)")
    }

    // MARK: endpoints

    func endpoint(for ref: ImageReference) async throws -> Endpoint {
        var origin: Origin
        let mapped = ref.registry.map { options.registryMap[$0.lowercased()] }
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
        let officialNamespace = CredentialStore.dockerHubAliases.contains(origin.host) || ref.registry == nil
            || ref.registry.map { CredentialStore.dockerHubAliases.contains($0.lowercased()) } == true
        var unprefixed: String?
        if officialNamespace && !repo.contains("/") {
            repo = "library/" + repo
            if !CredentialStore.dockerHubAliases.contains(origin.host) { unprefixed = ref.repository }
        }
        if let chosen = await auth.repository(for: "\(origin.hostPort) \(ref.repository)") { repo = chosen; unprefixed = nil }
        if options.insecure && origin.scheme == "https" && !origin.isLoopback {
            if let s = await auth.scheme(for: origin.hostPort) { origin.scheme = s }
            else { origin = await probeScheme(origin) }
        }
        return Endpoint(origin: origin, repository: repo, display: ref.description, unprefixed: unprefixed)
    }

    /// Plain http to a host other than this one carries tokens and credentials in clear: only
    /// with `--insecure`.
    func refusePlainHTTPToRemote(_ origin: Origin) throws {
        if origin.scheme == "http" && !origin.isLoopback && !options.insecure {
            throw RegistryError.invalidOption("refusing plain http to \(origin.hostPort): tokens and credentials would travel in clear (use https://, or --insecure for a registry you trust)")
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
            if let o = Origin("http://\(origin.host.contains(":") ? "[\(origin.host)]" : origin.host)\(origin.port == 443 ? "" : ":\(origin.port)")") {
                logger.debug("https to \(origin.hostPort) failed (\(RegistryClient.describe(error))); using http")
                chosen = o
            }
        }
        await auth.setScheme(chosen.scheme, for: origin.hostPort)
        return chosen
    }

    // MARK: transport

    /// One GET, with retries on 408, 429 and 5xx (but 501/505) and transient network errors
    /// (bounded exponential backoff, honouring Retry-After), and redirects followed by hand. `authorization` goes only to `authOrigin`,
    /// and never again once a redirect has left it.
    func send(url: String, headers: HTTPHeaders, authOrigin: Origin, authorization: String?,
              timeout: TimeAmount) async throws -> (response: HTTPClientResponse, origin: Origin, fromAuthOrigin: Bool) {
        var current = url
        var hops = 0
        var attempt = 0
        var leftOrigin = false
        while true {
            try Task.checkCancellation()
            guard let origin = Origin(current) else { throw RegistryError.invalidResponse("bad URL \(RegistryClient.redact(current))") }
            var req = HTTPClientRequest(url: current)
            req.method = .GET
            req.headers = headers
            req.headers.replaceOrAdd(name: "User-Agent", value: options.userAgent)
            let sameOrigin = origin == authOrigin && !leftOrigin
            if sameOrigin, let authorization { req.headers.replaceOrAdd(name: "Authorization", value: authorization) }
            else { req.headers.remove(name: "Authorization") }
            if !sameOrigin { req.headers.remove(name: "Cookie") }
            let response: HTTPClientResponse
            do {
                if attempt == 0 && hops == 0, let p = proxies.proxy(for: origin) {
                    logger.debug("GET \(RegistryClient.redact(current)) through proxy \(RegistryClient.redactProxy(p))")
                }
                response = try await client(for: current).execute(req, timeout: timeout)
            } catch {
                if error is CancellationError || Task.isCancelled { throw CancellationError() }
                attempt += 1
                if RegistryClient.isTransient(error) && attempt < options.maxAttempts {
                    let delay = backoff(attempt)
                    logger.debug("GET \(RegistryClient.redact(current)): \(RegistryClient.describe(error)); retrying in \(String(format: "%.1f", delay))s")
                    try await Task.sleep(nanoseconds: UInt64(delay * 1e9))
                    continue
                }
                logger.debug("GET \(RegistryClient.redact(current)) failed: \(String(describing: error).prefix(300))")
                throw RegistryError.unreachable(host: origin.hostPort, reason: RegistryClient.describe(error))
            }
            let code = Int(response.status.code)
            logger.debug("GET \(RegistryClient.redact(current))\(headers.first(name: "Range").map { " (\($0))" } ?? "")\(sameOrigin && authorization != nil ? " with \(authorization!.split(separator: " ").first ?? "") authorization" : ""): HTTP \(code)")
            switch code {
            case 301, 302, 303, 307, 308:
                guard let loc = response.headers.first(name: "Location"),
                      let next = URL(string: loc, relativeTo: URL(string: current))?.absoluteURL.absoluteString,
                      let nextOrigin = Origin(next) else {
                    throw RegistryError.invalidResponse("HTTP \(code) without a usable Location from \(origin.hostPort)")
                }
                await RegistryClient.discard(response)
                hops += 1
                if hops > RegistryClient.maxRedirects { throw RegistryError.tooManyRedirects(RegistryClient.redact(url)) }
                if origin.scheme == "https" && nextOrigin.scheme == "http" && !nextOrigin.isLoopback && !options.insecure {
                    throw RegistryError.invalidResponse("refusing redirect from https to plain http (\(nextOrigin.hostPort))")
                }
                if nextOrigin != authOrigin { leftOrigin = true }
                logger.debug("redirect \(code) to \(nextOrigin.hostPort)")
                current = next
                continue
            case let c where RegistryClient.isRetryableStatus(c):
                attempt += 1
                let retryAfter = parseRetryAfter(response.headers.first(name: "Retry-After"))
                await RegistryClient.discard(response)
                guard attempt < options.maxAttempts else {
                    if code == 429 { throw RegistryError.rateLimited(host: origin.hostPort, attempts: attempt) }
                    throw RegistryError.serverError(host: origin.hostPort, status: code, attempts: attempt)
                }
                let delay = min(retryAfter ?? backoff(attempt), options.maxRetryDelay)
                logger.info("HTTP \(code) from \(origin.hostPort); retrying in \(String(format: "%.1f", delay))s (attempt \(attempt + 1) of \(options.maxAttempts))")
                try await Task.sleep(nanoseconds: UInt64(max(0, delay) * 1e9))
                continue
            default:
                return (response, origin, sameOrigin)
            }
        }
    }

    /// 408, 429 and server errors that may pass (not 501 Not Implemented / 505 Version).
    static func isRetryableStatus(_ code: Int) -> Bool {
        code == 408 || code == 429 || ((500...599).contains(code) && code != 501 && code != 505)
    }

    /// Runs a request whose body is read into memory again when the connection drops while
    /// reading it (at most `maxAttempts` times, with backoff), then lets the error through.
    func retryingLostBody<T>(_ what: String, _ body: () async throws -> T) async throws -> T {
        var attempt = 0
        while true {
            do { return try await body() } catch let e as RegistryError {
                attempt += 1
                guard case .unreachable(_, let reason) = e, reason.hasPrefix(RegistryClient.lostWhileReading),
                      attempt < options.maxAttempts else { throw e }
                let delay = backoff(attempt)
                logger.info("\(what): \(reason); retrying in \(String(format: "%.1f", delay))s")
                try await Task.sleep(nanoseconds: UInt64(delay * 1e9))
            }
        }
    }

    static let lostWhileReading = "connection lost while reading"

    func backoff(_ attempt: Int) -> Double {
        let base = options.retryBaseDelay * pow(2, Double(max(0, attempt - 1)))
        let jitter = base * Double.random(in: 0..<0.1)
        return min(base + jitter, options.maxRetryDelay)
    }

    /// A GET on the registry with its authentication: anonymous or cached credentials first; on a
    /// 401 from the registry, answer the challenge once (Bearer token or Basic) and retry; a second
    /// 401 fails. Returns only non-401 responses.
    func registryGET(_ endpoint: Endpoint, path: String, headers: HTTPHeaders = [:],
                     timeout: TimeAmount = .seconds(300)) async throws -> (response: HTTPClientResponse, origin: Origin) {
        var answered = false
        while true {
            let authorization = await auth.header(host: endpoint.host, scope: endpoint.scope)
            let (response, origin, fromRegistry) = try await send(url: endpoint.base + path, headers: headers,
                                                                  authOrigin: endpoint.origin,
                                                                  authorization: authorization, timeout: timeout)
            let code = Int(response.status.code)
            guard code == 401 else { return (response, origin) }
            let challengeHeader = response.headers.first(name: "WWW-Authenticate")
            await RegistryClient.discard(response)
            let challenge = challengeHeader.flatMap(AuthChallenge.init)
            guard fromRegistry else {
                throw RegistryError.authRefused(host: origin.hostPort, status: 401, detail: "after a redirect away from \(endpoint.host)")
            }
            if answered {
                let detail = challenge?.parameters["error"].map { $0 == "insufficient_scope" ? "insufficient scope for \(endpoint.repository) (does the image exist? are you logged in?)" : $0 }
                throw RegistryError.authRefused(host: endpoint.host, status: 401, detail: detail)
            }
            answered = true
            logger.debug("\(endpoint.host) asks for authentication: \(challenge.map { c in ([c.scheme] + ["realm", "service", "scope"].compactMap { k in c.parameters[k].map { "\(k)=\($0)" } }).joined(separator: " ") } ?? "no usable challenge")")
            guard let challenge else {
                throw RegistryError.authRefused(host: endpoint.host, status: 401, detail: "no usable WWW-Authenticate challenge")
            }
            try await answer(challenge, endpoint: endpoint)
        }
    }

    private func credentials(for endpoint: Endpoint) -> String? {
        options.credentials.authorization(forRegistry: endpoint.host)
            ?? (endpoint.origin.port == 443 ? options.credentials.authorization(forRegistry: "https://\(endpoint.origin.host)") : nil)
    }

    /// May we send Basic credentials to this origin? Only over TLS, or to the local machine.
    private static func mayCarryBasic(_ origin: Origin) -> Bool { origin.scheme == "https" || origin.isLoopback }

    func answer(_ challenge: AuthChallenge, endpoint: Endpoint) async throws {
        let creds = credentials(for: endpoint)
        switch challenge.scheme {
        case "bearer":
            guard let realm = challenge.realm, var components = URLComponents(string: realm),
                  let realmOrigin = Origin(realm) else {
                throw RegistryError.authRefused(host: endpoint.host, status: 401, detail: "Bearer challenge without a valid realm")
            }
            var query = components.queryItems ?? []
            if let service = challenge.parameters["service"] { query.append(URLQueryItem(name: "service", value: service)) }
            query.append(URLQueryItem(name: "scope", value: challenge.parameters["scope"] ?? endpoint.scope))
            components.queryItems = query
            guard let tokenURL = components.url?.absoluteString else {
                throw RegistryError.authRefused(host: endpoint.host, status: 401, detail: "bad token realm")
            }
            var basic: String?
            if let creds {
                if RegistryClient.mayCarryBasic(realmOrigin) { basic = "Basic \(creds)" }
                else { logger.warning("not sending credentials to \(realmOrigin.hostPort) over plain http") }
            }
            logger.debug("requesting a token from \(realmOrigin.hostPort) \(basic == nil ? "anonymously" : "with stored credentials")")
            let (response, origin, _) = try await send(url: tokenURL, headers: ["Accept": "application/json"],
                                                       authOrigin: realmOrigin, authorization: basic,
                                                       timeout: .seconds(120))
            let code = Int(response.status.code)
            guard code == 200 else {
                await RegistryClient.discard(response)
                if code == 401 || code == 403 {
                    throw RegistryError.authRefused(host: origin.hostPort, status: code,
                                                    detail: basic == nil ? "no credentials for \(endpoint.host) (use udocker login)" : "credentials rejected")
                }
                throw RegistryError.unexpectedStatus(host: origin.hostPort, status: code, what: "token request")
            }
            let body = try await RegistryClient.collect(response, limit: RegistryClient.tokenLimit, what: "token response", host: origin.hostPort)
            struct TokenReply: Decodable { var token: String?; var access_token: String? }
            guard let reply = try? JSONDecoder().decode(TokenReply.self, from: Data(body)),
                  let token = [reply.token, reply.access_token].compactMap({ $0 }).first(where: { !$0.isEmpty }) else {
                throw RegistryError.invalidResponse("token response from \(origin.hostPort) has no token")
            }
            guard token.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7f }) else {
                throw RegistryError.invalidResponse("token from \(origin.hostPort) has invalid characters")
            }
            await auth.setBearer(token, host: endpoint.host, scope: endpoint.scope)
            logger.debug("token received for \(endpoint.scope) (\(token.utf8.count) characters, not shown)")
        case "basic":
            guard let creds else {
                throw RegistryError.credentialsRequired(host: endpoint.host, reason: "no credentials stored (use udocker login)")
            }
            guard RegistryClient.mayCarryBasic(endpoint.origin) else {
                throw RegistryError.credentialsRequired(host: endpoint.host, reason: "refusing to send credentials over plain http")
            }
            await auth.setBasic(creds, host: endpoint.host)
            logger.debug("answering the Basic challenge of \(endpoint.host) with stored credentials")
        default:
            throw RegistryError.authRefused(host: endpoint.host, status: 401, detail: "unsupported authentication scheme '\(challenge.scheme)'")
        }
    }

    // MARK: bodies

    static func collect(_ response: HTTPClientResponse, limit: Int, what: String, host: String) async throws -> [UInt8] {
        if let len = response.headers.first(name: "Content-Length").flatMap(Int.init), len > limit {
            throw RegistryError.tooLarge(what: what, limit: limit)
        }
        var out = [UInt8]()
        do {
            for try await chunk in response.body {
                guard out.count + chunk.readableBytes <= limit else { throw RegistryError.tooLarge(what: what, limit: limit) }
                out.append(contentsOf: chunk.readableBytesView)
            }
        } catch let e as RegistryError {
            throw e
        } catch {
            if error is CancellationError { throw error }
            throw RegistryError.unreachable(host: host, reason: "\(lostWhileReading) \(what): \(describe(error))")
        }
        return out
    }

    /// Reads and drops a small body so the connection can be reused; gives up past 64 KiB.
    static func discard(_ response: HTTPClientResponse) async {
        _ = try? await collectQuietly(response, limit: errorBodyLimit)
    }

    static func collectQuietly(_ response: HTTPClientResponse, limit: Int) async throws -> [UInt8] {
        var out = [UInt8]()
        for try await chunk in response.body {
            if out.count + chunk.readableBytes > limit { break }
            out.append(contentsOf: chunk.readableBytesView)
        }
        return out
    }

    // MARK: errors

    static func isTransient(_ error: Error) -> Bool {
        if let e = error as? HTTPClientError {
            return [HTTPClientError.readTimeout, .remoteConnectionClosed, .connectTimeout, .tlsHandshakeTimeout,
                    .uncleanShutdown, .writeTimeout, .getConnectionFromPoolTimeout].contains(e)
        }
        if let e = error as? IOError { return [ECONNRESET, EPIPE, ETIMEDOUT, ECONNABORTED].contains(e.errnoCode) }
        let text = String(describing: error).lowercased()
        if text.contains("refused") || text.contains("certificate") || text.contains("ssl") || text.contains("tls") { return false }
        return text.contains("reset") || text.contains("eof") || text.contains("closed") || text.contains("timed out")
            || text.contains("timeout") || text.contains("broken pipe")
    }

    /// A short human reason for a transport error (never includes request headers).
    static func describe(_ error: Error) -> String {
        if let e = error as? RegistryError { return e.description }
        if let e = error as? HTTPClientError {
            switch e {
            case .connectTimeout: return "connection timed out"
            case .readTimeout: return "no data received (read timeout)"
            case .remoteConnectionClosed: return "connection closed by the server"
            case .tlsHandshakeTimeout: return "TLS handshake timed out"
            case .deadlineExceeded: return "request took too long"
            default: return describeTLS(String(describing: e).lowercased()) ?? String(describing: e)
            }
        }
        if let e = error as? IOError { return String(cString: strerror(e.errnoCode)).lowercased() }
        let text = String(describing: error)
        let lower = text.lowercased()
        if lower.contains("connection refused") || lower.contains("econnrefused") { return "connection refused" }
        if lower.contains("connection reset") || lower.contains("econnreset") { return "connection reset" }
        if lower.contains("nodename nor servname") || lower.contains("name or service not known")
            || lower.contains("name resolution") || lower.contains("no address") { return "host name not found" }
        if let tls = describeTLS(lower) { return tls }
        return String(text.prefix(300))
    }

    /// TLS failures in words (the library's error text stays for -D).
    static func describeTLS(_ lower: String) -> String? {
        let hint = "trust its CA with SSL_CERT_FILE or SSL_CERT_DIR, or use --insecure for a registry you trust"
        if lower.contains("certificate_verify_failed") || lower.contains("unable to get local issuer")
            || lower.contains("self signed") || lower.contains("self-signed") || lower.contains("certificate has expired")
            || lower.contains("unknown ca") || lower.contains("unknown_ca") {
            if lower.contains("expired") { return "the server's TLS certificate has expired (\(hint))" }
            return "the server's TLS certificate is not trusted (self-signed or unknown authority): \(hint)"
        }
        if lower.contains("validatehostname") || lower.contains("hostname") && lower.contains("certificate") {
            return "the server's TLS certificate is for another host name (\(hint))"
        }
        if lower.contains("wrong_version_number") || lower.contains("wrong version number") || lower.contains("http_request") {
            return "the server does not speak TLS on this port (a plain http registry? use http:// for it, with --insecure when remote)"
        }
        if lower.contains("handshake") || lower.contains("certificate") || lower.contains("ssl") || lower.contains("tls") {
            return "TLS handshake failed (\(hint))"
        }
        return nil
    }

    /// Drops query strings (tokens and signatures live there) from URLs in messages.
    static func redact(_ url: String) -> String {
        guard let q = url.firstIndex(of: "?") else { return url }
        return String(url[..<q]) + "?…"
    }

    /// A proxy URL without its user and password.
    static func redactProxy(_ url: String) -> String {
        guard let at = url.lastIndex(of: "@") else { return url }
        let scheme = url.range(of: "://").map { String(url[..<$0.upperBound]) } ?? ""
        return scheme + "…@" + url[url.index(after: at)...]
    }
}
