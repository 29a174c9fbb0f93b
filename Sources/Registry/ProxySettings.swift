import AsyncHTTPClient
import FoundationEssentials
import UDockerSystem

/// Which proxy a request goes through, as curl decides it for the Python udocker: an explicit
/// proxy (`--httpproxy`, `http_proxy` in udocker.conf) for everything; otherwise `https_proxy`
/// for https URLs and `http_proxy` for http URLs (lower case first, then upper case; curl never
/// reads `HTTP_PROXY` in upper case, we do not either), except hosts listed in `no_proxy` /
/// `NO_PROXY` (`*`, `host`, `.domain` / `domain` suffixes, `host:port`, IP addresses).
struct ProxySettings: Sendable {
    var explicit: String?
    var https: String?
    var http: String?
    var noProxy: [String]

    init(explicit: String?, environment: [String: String]) {
        func value(_ names: String...) -> String? {
            for n in names { if let v = environment[n]?.trimmed(where: \.isBlank), !v.isEmpty { return v } }
            return nil
        }
        self.explicit = explicit.flatMap { $0.isEmpty ? nil : $0 }
        https = value("https_proxy", "HTTPS_PROXY")
        http = value("http_proxy")
        noProxy = (value("no_proxy", "NO_PROXY") ?? "").split(separator: ",")
            .map { $0.trimmed(where: \.isBlank).lowercased() }.filter { !$0.isEmpty }
    }

    /// The proxy URL for a request to `origin`, or nil to connect directly.
    func proxy(for origin: Origin) -> String? {
        if bypasses(origin) { return nil }
        if let explicit { return explicit }
        return origin.scheme == "https" ? https : http
    }

    func bypasses(_ origin: Origin) -> Bool {
        for entry in noProxy {
            if entry == "*" { return true }
            var pattern = entry
            var port: Int?
            if let colon = pattern.lastIndex(of: ":"), !pattern.hasPrefix("["), pattern.filter({ $0 == ":" }).count == 1 {
                port = Int(pattern[pattern.index(after: colon)...]); pattern = String(pattern[..<colon])
            }
            if pattern.hasPrefix("[") && pattern.hasSuffix("]") { pattern = String(pattern.dropFirst().dropLast()) }
            if let port, port != origin.port { continue }
            if pattern.hasPrefix("*.") { pattern.removeFirst() }
            if pattern.hasPrefix(".") {
                if origin.host.hasSuffix(pattern) || origin.host == String(pattern.dropFirst()) { return true }
            } else if origin.host == pattern || origin.host.hasSuffix("." + pattern) {
                return true
            }
        }
        return false
    }

    /// Every distinct proxy URL that may be used (one HTTP client each).
    var all: [String] { Array(Set([explicit, https, http].compactMap { $0 })).sorted() }
}
