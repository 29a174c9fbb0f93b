import FoundationEssentials
import UDockerSystem
#if canImport(Glibc)
import Glibc
#endif

/// How to reach registries.
public struct RegistryOptions: Sendable {
    /// Default registry for names without a host (`--registry`, `UDOCKER_REGISTRY`). A URL without a
    /// scheme gets `https://`. `nil` means Docker Hub, `https://registry-1.docker.io`.
    public var registryURL: String?
    /// Index for search (`--index`, `UDOCKER_INDEX`); not used by pull.
    public var indexURL: String?
    /// udocker's `docker_registries`: registry host as written in image names (`docker.io`,
    /// `quay.io`) → the registry URL to use for it (a mirror). `docker.io` also applies to names
    /// without a host when no default registry is configured.
    public var registryMap: [String: String] = [:]
    /// `--insecure`: skip TLS verification and allow plain HTTP to any registry.
    public var insecure: Bool
    /// `--httpproxy`: `http://[user:pass@]host:port` or `socks5://host:port` (also `socks5h`, `socks`).
    public var httpProxy: String?
    /// Concurrent blob downloads (at least 1; 4 by default).
    public var parallelism: Int
    public var credentials: CredentialStore
    /// Attempts for one request facing 429/502/503/504 or a network failure.
    public var maxAttempts: Int
    /// First backoff delay in seconds when no Retry-After is given (doubles each time).
    public var retryBaseDelay: Double
    /// Cap for Retry-After and backoff, in seconds.
    public var maxRetryDelay: Double
    /// Connect timeout in seconds.
    public var connectTimeout: Int64
    /// Seconds without receiving a byte before a response is abandoned (then resumed for blobs).
    public var readTimeout: Int64
    public var userAgent: String
    /// When a download under way is given up (stall, minimum rate over a window).
    public var transferLimits = TransferLimits()
    /// Seconds a whole pull may take (`pull_timeout`); 0: no limit.
    public var pullTimeout: Double = 0
    /// Where `https_proxy`, `http_proxy` and `no_proxy` (and upper case) are read from.
    public var environment: [String: String] = ProcessInfo.processInfo.environment

    public static let dockerHubRegistry = "https://registry-1.docker.io"

    public init(
        registryURL: String? = nil, indexURL: String? = nil, insecure: Bool = false,
        httpProxy: String? = nil, parallelism: Int = 4,
        credentials: CredentialStore = CredentialStore(udockerKeystore: nil, dockerConfig: nil),
        maxAttempts: Int = 4, retryBaseDelay: Double = 1, maxRetryDelay: Double = 60,
        connectTimeout: Int64 = 15, readTimeout: Int64 = 120,
        userAgent: String = "udocker-swift/1.0"
    ) {
        self.registryURL = registryURL; self.indexURL = indexURL; self.insecure = insecure
        self.httpProxy = httpProxy; self.parallelism = parallelism; self.credentials = credentials
        self.maxAttempts = maxAttempts; self.retryBaseDelay = retryBaseDelay; self.maxRetryDelay = maxRetryDelay
        self.connectTimeout = connectTimeout; self.readTimeout = readTimeout
        self.userAgent = userAgent
    }
}

extension RegistryOptions {
    /// udocker's `docker_registries` value: `{"host": ["registry URL", "index URL"], …}` (a
    /// Python literal with single quotes is accepted too; a plain string value is the registry).
    /// Returns host → registry URL, or nil when the text is not such an object.
    public static func parseRegistryMap(_ text: String) -> [String: String]? {
        let trimmed = text.trimmed(where: \.isBlank)
        guard !trimmed.isEmpty else { return [:] }
        let json = trimmed.contains("\"") ? trimmed : trimmed.replacing("'", with: "\"")
        guard let obj = JSONAny.object(Array(json.utf8)) else { return nil }
        var out: [String: String] = [:]
        for (host, value) in obj {
            if let list = value as? [Any], let first = list.first as? String, !first.isEmpty {
                out[host.lowercased()] = first
            } else if let url = value as? String, !url.isEmpty {
                out[host.lowercased()] = url
            } else {
                return nil
            }
        }
        return out
    }
}

/// Read-only lookup of registry credentials from udocker's keystore and Docker's `config.json`.
public struct CredentialStore: Sendable {
    /// Normalised key (host[:port], lowercased) → base64 `user:password`.
    private var entries: [String: String] = [:]
    /// Why a file was not used (insecure permissions, bad JSON); for the CLI to print.
    public private(set) var warnings: [String] = []

    /// - Parameters:
    ///   - udockerKeystore: path of udocker's keystore (`{"https://host": {"auth": "<base64>"}}`).
    ///     Like udocker, a keystore readable or writable by group/others, or not owned by the
    ///     user, is ignored (with a warning).
    ///   - dockerConfig: path of a Docker `config.json` (see `DockerCredentials`).
    /// The keystore wins over the Docker config for the same registry.
    public init(udockerKeystore: String?, dockerConfig: String?) {
        if let path = dockerConfig { docker = DockerCredentials(path: path); warnings += docker!.warnings }
        if let path = udockerKeystore { loadKeystore(path) }
    }
    /// Docker's logins (`auths`, `credHelpers`, `credsStore`), asked after the keystore.
    private var docker: DockerCredentials?

    /// Credentials given directly (tests, `--username/--password` style callers).
    public init(entries: [String: String]) {
        for (k, v) in entries { self.entries[CredentialStore.normalize(k)] = v }
    }

    private mutating func loadKeystore(_ path: String) {
        var st = stat()
        guard stat(path, &st) == 0 else { return }  // absent: nothing to read
        if st.st_uid != getuid() {
            warnings.append("ignoring keystore \(path): not owned by the current user"); return
        }
        if st.st_mode & 0o077 != 0 {
            warnings.append("ignoring keystore \(path): readable or writable by others (chmod 600 it)"); return
        }
        guard let data = FileManager.default.contents(atPath: path), data.count <= 4 << 20,
            let json = JSONAny.object(data)
        else {
            warnings.append("ignoring \(path): not a JSON object"); return
        }
        entries = DockerCredentials.authTable(json)
    }

    /// `https://Host:5000/v1/` → `host:5000`.
    static func normalize(_ key: String) -> String {
        var s = Substring(key.trimmed(where: \.isBlank))
        if let r = s.firstRange(of: "://") { s = s[r.upperBound...] }
        if let slash = s.firstIndex(of: "/") { s = s[..<slash] }
        return s.lowercased()
    }

    static let dockerHubAliases: Set<String> = ["docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"]

    /// Base64 `user:password` for a registry host (`quay.io`, `127.0.0.1:5000`) or URL
    /// (`https://quay.io`). Docker Hub's names are interchangeable.
    public func authorization(forRegistry host: String) -> String? {
        let key = CredentialStore.normalize(host)
        if let v = entries[key] { return v }
        if CredentialStore.dockerHubAliases.contains(key) {
            for alias in CredentialStore.dockerHubAliases.sorted() { if let v = entries[alias] { return v } }
        }
        return docker?.authorization(forKey: key)
    }

    public var isEmpty: Bool { entries.isEmpty && docker?.isEmpty != false }

    /// Why Docker's credential helper gave nothing for `host`, once it was asked.
    public func problem(forRegistry host: String) -> String? {
        docker?.problem(forKey: CredentialStore.normalize(host))
    }
}
