import OCI

/// Everything that can go wrong talking to a registry. Each description is one line for the user;
/// none of them carries a token or a credential.
public enum RegistryError: Error, CustomStringConvertible, Sendable {
    /// The repository does not exist (or is hidden from us): `name`.
    case imageNotFound(String)
    /// The repository exists but not this tag: `name:tag`.
    case tagNotFound(String)
    /// A manifest fetched by digest is missing: `name@digest`.
    case manifestNotFound(String)
    case blobNotFound(digest: String, repository: String)
    case noMatchingPlatform(platform: String, image: String, available: [String])
    case authRefused(host: String, status: Int, detail: String?)
    /// A 401/Basic challenge and nothing to answer it with, or only over plain HTTP.
    case credentialsRequired(host: String, reason: String)
    case unreachable(host: String, reason: String)
    /// The connection dropped while a small body (manifest, config, token) was read: retried.
    case bodyInterrupted(host: String, what: String, reason: String)
    case digestMismatch(expected: Digest, actual: Digest)
    case sizeMismatch(digest: String, expected: Int64, detail: String)
    case schema1Unsupported(String)
    /// 429 on every attempt; `retryAfter`: the registry's last Retry-After, in seconds.
    case rateLimited(host: String, attempts: Int, retryAfter: Double? = nil)
    case serverError(host: String, status: Int, attempts: Int)
    case unexpectedStatus(host: String, status: Int, what: String)
    case tooLarge(what: String, limit: Int)
    case invalidManifest(String)
    case invalidResponse(String)
    case tooManyRedirects(String)
    /// A redirect from the internet into loopback, link-local or the private network.
    case redirectRefused(String)
    case unsupportedProxy(String)
    case invalidOption(String)
    case io(String)
    /// A blob download given up by `TransferLimits`; `done` of `total` bytes are kept.
    case transferTooSlow(host: String, blob: String, reason: String, done: Int64, total: Int64)
    /// The proxy for `host` cannot be reached (refused, unknown name, no answer).
    case proxyUnreachable(proxy: String, host: String, reason: String)
    /// The proxy answered but did not get us to `host`.
    case proxyFailed(proxy: String, host: String, reason: String)
    /// The pull did not finish within `pull_timeout` seconds.
    case deadlineExceeded(seconds: Double)

    public var description: String {
        switch self {
        case .imageNotFound(let n): return "repository not found: \(n)"
        case .tagNotFound(let n): return "tag not found: \(n)"
        case .manifestNotFound(let n): return "manifest not found: \(n)"
        case .blobNotFound(let d, let r): return "blob not found: \(d) in \(r)"
        case .noMatchingPlatform(let p, let image, let available):
            let list = available.isEmpty ? "none declared" : available.joined(separator: ", ")
            return "no image for platform \(p) in \(image) (available: \(list))"
        case .authRefused(let host, let status, let detail):
            return "authentication refused by \(host) (HTTP \(status))" + (detail.map { ": \($0)" } ?? "")
        case .credentialsRequired(let host, let reason): return "\(host) requires credentials: \(reason)"
        case .unreachable(let host, let reason): return "registry unreachable: \(host): \(reason)"
        case .bodyInterrupted(let host, _, _): return "registry unreachable: \(host): \(reason)"
        case .digestMismatch(let e, let a): return "digest mismatch for \(e): got \(a)"
        case .sizeMismatch(let d, let e, let detail): return "size mismatch for \(d): expected \(e) bytes, \(detail)"
        case .schema1Unsupported(let n):
            return "schema 1 manifests are not supported (\(n)); ask for a schema 2 or OCI image"
        case .rateLimited(let host, let n, let wait):
            let when =
                wait.map { w in
                    w < 1
                        ? "wait a few seconds"
                        : w >= 120 ? "wait \(Int((w / 60).rounded(.up))) minutes" : "wait \(Int(w.rounded(.up))) seconds"
                } ?? "wait a few minutes"
            return
                "rate limited by \(host) after \(n) attempts (HTTP 429): \(when) and try again; logged-in users (udocker login) often get a higher limit"
        case .serverError(let host, let status, let n): return "server error from \(host): HTTP \(status) after \(n) attempts"
        case .unexpectedStatus(let host, let status, let what): return "unexpected HTTP \(status) from \(host) for \(what)"
        case .tooLarge(let what, let limit): return "\(what) is larger than the \(limit)-byte limit"
        case .invalidManifest(let s): return "invalid manifest: \(s)"
        case .invalidResponse(let s): return "invalid registry response: \(s)"
        case .tooManyRedirects(let s): return "too many redirects for \(s)"
        case .redirectRefused(let s): return s
        case .unsupportedProxy(let s): return "unsupported proxy '\(s)': use http://host:port or socks5://host:port"
        case .invalidOption(let s): return s
        case .io(let s): return s
        case .transferTooSlow(let host, let blob, let reason, let done, let total):
            return
                "download of \(blob) from \(host) given up: \(reason); \(done) of \(total) bytes kept, the next pull resumes them"
        case .proxyUnreachable(let proxy, let host, let reason):
            return "proxy unreachable: \(proxy) (the proxy for \(host)): \(reason); check --httpproxy, http_proxy/https_proxy or no_proxy"
        case .proxyFailed(let proxy, let host, let reason): return "proxy \(proxy) failed for \(host): \(reason)"
        case .deadlineExceeded(let seconds):
            return
                "pull did not finish within \(TransferLimits.seconds(seconds)) s (pull_timeout); the next pull resumes what was downloaded"
        }
    }

    /// The reason part of a transport failure, for retry messages.
    var reason: String {
        switch self {
        case .unreachable(_, let reason): return reason
        case .bodyInterrupted(_, let what, let reason): return "connection lost while reading \(what): \(reason)"
        default: return description
        }
    }
}
