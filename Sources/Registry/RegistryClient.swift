import AsyncHTTPClient
import FoundationEssentials
import NIOCore
import NIOHTTP1
import NIOSSL
import OCI
import UDockerSystem

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
    /// Direct connections (https too when no extra certificate authority is configured).
    let http: HTTPClient
    /// Direct https connections trusting `SSL_CERT_FILE` / `SSL_CERT_DIR` too, made on first use.
    let tls: LazyTLSClient?
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
        // Every proxy is parsed before any HTTP client exists: a client dropped without
        // `shutdown()` traps in the HTTP client's debug builds (an unsupported `--httpproxy`
        // crashed with SIGILL there).
        let proxies = ProxySettings(explicit: options.httpProxy, environment: options.environment)
        let proxySettings = try proxies.all.map { ($0, try RegistryClient.parseProxy($0)) }
        var config = HTTPClient.Configuration(certificateVerification: options.insecure ? .none : .fullVerification)
        config.redirectConfiguration = .disallow
        config.timeout = .init(connect: .seconds(options.connectTimeout), read: .seconds(options.readTimeout))
        config.connectionPool.retryConnectionEstablishment = false
        config.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = max(8, options.parallelism)
        config.decompression = .disabled
        http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: config)
        // Sites with intercepting proxies or private CAs: SSL_CERT_FILE / SSL_CERT_DIR are trusted
        // in addition to the system roots, loaded only once an https URL is requested.
        let extraRoots = !options.insecure && LazyTLSClient.wanted(options.environment)
        tls = extraRoots ? LazyTLSClient(configuration: config, environment: options.environment) : nil
        self.proxies = proxies
        var proxied: [String: HTTPClient] = [:]
        let proxyConfig = extraRoots && !proxies.all.isEmpty ? LazyTLSClient.withExtraRoots(config, options.environment) : config
        for (p, proxy) in proxySettings {
            var c = proxyConfig
            c.proxy = proxy
            proxied[p] = HTTPClient(eventLoopGroupProvider: .singleton, configuration: c)
        }
        self.proxied = proxied
    }

    /// The client for a request to `url`: through the proxy that applies to it, or direct.
    func client(for url: String) -> HTTPClient {
        guard let origin = Origin(url), let p = proxies.proxy(for: origin), let c = proxied[p] else {
            if let tls, url.lowercased().hasPrefix("https://") { return tls.client }
            return http
        }
        return c
    }

    public func shutdown() async {
        try? await http.shutdown()
        try? await tls?.existing?.shutdown()
        for c in proxied.values { try? await c.shutdown() }
    }

    deinit {
        // `shutdown()` is the way to end a client; this only covers callers that forgot it.
        let clients = [http] + Array(proxied.values) + (tls?.existing.map { [$0] } ?? [])
        Task { for c in clients { try? await c.shutdown() } }
    }

    // MARK: options parsing

    static func parseProxy(_ s: String) throws -> HTTPClient.Configuration.Proxy {
        let withScheme = s.contains("://") ? s : "http://\(s)"
        guard let u = URLComponents(string: withScheme), let scheme = u.scheme?.lowercased(),
            let host = u.host, !host.isEmpty
        else { throw RegistryError.unsupportedProxy(s) }
        switch scheme {
        case "http":
            let port = u.port ?? 80
            if let user = u.user {
                return .server(
                    host: host, port: port,
                    authorization: .basic(
                        username: user.percentDecoded ?? user,
                        password: (u.password ?? "").percentDecoded ?? ""))
            }
            return .server(host: host, port: port)
        case "socks5", "socks5h", "socks":
            // The HTTP client speaks SOCKS5 without authentication and sends the host name to the
            // proxy (socks5h's way; socks5 is treated alike).
            guard u.user == nil else {
                throw RegistryError.invalidOption(
                    "unsupported proxy '\(scheme)://…@\(host)': SOCKS5 with a user and password is not supported (use a SOCKS5 proxy without authentication, or an http:// proxy)"
                )
            }
            return .socksServer(host: host, port: u.port ?? 1080)
        case "socks4", "socks4a":
            throw RegistryError.invalidOption(
                "unsupported proxy '\(scheme)://\(host)\(u.port.map { ":\($0)" } ?? "")': SOCKS4 is not supported (use socks5://, socks5h:// or http://)"
            )
        default:
            throw RegistryError.unsupportedProxy("\(scheme)://\(host)")
        }
    }

    /// `host[:port]`, `http(s)://host[:port][/]` → origin. Paths are ignored.
    static func parseBaseURL(_ s: String) -> Origin? {
        let trimmed = s.trimmed(where: \.isBlank)
        return Origin(trimmed.contains("://") ? trimmed : "https://\(trimmed)")
    }
}
