import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import Crypto
import OCI
import UDockerSystem

/// A parsed `WWW-Authenticate` challenge: `Bearer realm="…",service="…",scope="…"`.
struct AuthChallenge: Equatable, Sendable {
    var scheme: String  // lowercased: "bearer", "basic"
    var parameters: [String: String]  // keys lowercased

    var realm: String? { parameters["realm"] }

    /// Parses one challenge. Quoted values may contain commas and `\"` escapes.
    init?(_ header: String) {
        let s = Array(header.utf8)
        var i = 0
        func skipSpaces() { while i < s.count && (s[i] == 0x20 || s[i] == 0x09) { i += 1 } }
        skipSpaces()
        let start = i
        while i < s.count && s[i] != 0x20 && s[i] != 0x09 { i += 1 }
        guard i > start else { return nil }
        scheme = String(decoding: s[start..<i], as: UTF8.self).lowercased()
        parameters = [:]
        while i < s.count {
            skipSpaces()
            while i < s.count && s[i] == 0x2c { i += 1; skipSpaces() }
            let ks = i
            while i < s.count && s[i] != 0x3d && s[i] != 0x2c { i += 1 }
            guard i < s.count, s[i] == 0x3d else { break }
            let key = String(decoding: s[ks..<i], as: UTF8.self).trimmed(where: \.isBlank).lowercased()
            i += 1
            skipSpaces()
            var value = [UInt8]()
            if i < s.count && s[i] == 0x22 {
                i += 1
                while i < s.count && s[i] != 0x22 {
                    if s[i] == 0x5c && i + 1 < s.count { i += 1 }
                    value.append(s[i]); i += 1
                }
                i += 1  // closing quote
            } else {
                while i < s.count && s[i] != 0x2c { value.append(s[i]); i += 1 }
            }
            if !key.isEmpty {
                parameters[key] = String(decoding: value, as: UTF8.self).trimmed(where: \.isBlank)
            }
        }
    }
}

/// `Retry-After`: delta-seconds or an HTTP-date. Returns the wait in seconds (0 for a past
/// date), or nil when the value is missing or unparsable.
func parseRetryAfter(_ value: String?, now: Date = Date()) -> Double? {
    guard let v = value?.trimmed(where: \.isBlank), !v.isEmpty else { return nil }
    if v.allSatisfy({ $0.isASCII && $0.isNumber }) { return Double(v) }
    guard let date = parseHTTPDate(v) else { return nil }
    return max(0, date.timeIntervalSince(now))
    return nil
}

/// An HTTP-date (RFC 9110 §5.6.7) in any of its three forms, always GMT:
/// `Sun, 06 Nov 1994 08:49:37 GMT`, `Sunday, 06-Nov-94 08:49:37 GMT`, `Sun Nov  6 08:49:37 1994`.
func parseHTTPDate(_ text: String) -> Date? {
    let months = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
    let fields = text.split(whereSeparator: { $0 == " " || $0 == "," }).map(String.init)
    var day: Int?, month: Int?, year: Int?, clock: [Int]?
    switch fields.count {
    case 4 where fields[3] == "GMT":  // RFC 850: Sunday, 06-Nov-94 08:49:37 GMT
        let d = fields[1].split(separator: "-").map(String.init)
        guard d.count == 3 else { return nil }
        day = Int(d[0]); month = months.firstIndex(of: d[1].lowercased()); year = Int(d[2]).map { $0 < 70 ? 2000 + $0 : 1900 + $0 }
        clock = fields[2].split(separator: ":").compactMap { Int($0) }
    case 6 where fields[5] == "GMT":  // IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT
        day = Int(fields[1]); month = months.firstIndex(of: fields[2].lowercased()); year = Int(fields[3])
        clock = fields[4].split(separator: ":").compactMap { Int($0) }
    case 5:  // asctime: Sun Nov  6 08:49:37 1994
        day = Int(fields[2]); month = months.firstIndex(of: fields[1].lowercased()); year = Int(fields[4])
        clock = fields[3].split(separator: ":").compactMap { Int($0) }
    default: return nil
    }
    guard let day, let month, let year, let clock, clock.count == 3, (1...31).contains(day), (0...23).contains(clock[0]),
        (0...59).contains(clock[1]), (0...60).contains(clock[2])
    else { return nil }
    var t = tm()
    t.tm_year = Int32(year - 1900); t.tm_mon = Int32(month); t.tm_mday = Int32(day)
    t.tm_hour = Int32(clock[0]); t.tm_min = Int32(clock[1]); t.tm_sec = Int32(clock[2])
    return Date(timeIntervalSince1970: Double(timegm(&t)))
}

/// `Content-Range: bytes <start>-<end>/<total|*>`.
struct ContentRange: Equatable {
    var start: Int64
    var end: Int64
    var total: Int64?

    init?(_ header: String?) {
        guard let h = header?.trimmed(where: \.isBlank), h.lowercased().hasPrefix("bytes ") else { return nil }
        let rest = h.dropFirst(6).trimmed(where: \.isBlank)
        let halves = rest.split(separator: "/", maxSplits: 1)
        guard halves.count == 2 else { return nil }
        let range = halves[0].split(separator: "-", maxSplits: 1)
        guard range.count == 2, let a = Int64(range[0]), let b = Int64(range[1]), a >= 0, b >= a else { return nil }
        start = a; end = b
        if halves[1] == "*" {
            total = nil
        } else {
            guard let t = Int64(halves[1]), t > b else { return nil }
            total = t
        }
    }
}

/// An incremental hash for the digest algorithms OCI knows.
struct BlobHasher {
    private enum State { case sha256(SHA256), sha512(SHA512) }
    private var state: State
    let algorithm: String

    init(algorithm: String) {
        self.algorithm = algorithm
        state = algorithm == "sha512" ? .sha512(SHA512()) : .sha256(SHA256())
    }

    mutating func update(_ bytes: UnsafeRawBufferPointer) {
        switch state {
        case .sha256(var h): h.update(bufferPointer: bytes); state = .sha256(h)
        case .sha512(var h): h.update(bufferPointer: bytes); state = .sha512(h)
        }
    }

    mutating func update(_ bytes: [UInt8]) { bytes.withUnsafeBytes { update($0) } }

    func finalize() -> OCI.Digest {
        let hex: String
        switch state {
        case .sha256(let h): hex = Format.hex(h.finalize())
        case .sha512(let h): hex = Format.hex(h.finalize())
        }
        return try! OCI.Digest(algorithm: algorithm, hex: hex)
    }

    static func digest(of bytes: [UInt8], algorithm: String) -> OCI.Digest {
        var h = BlobHasher(algorithm: algorithm)
        h.update(bytes)
        return h.finalize()
    }
}

/// Scheme, host and port of a URL: what "the same origin" means for credentials.
struct Origin: Hashable, Sendable, CustomStringConvertible {
    var scheme: String
    var host: String  // lowercased, IPv6 without brackets
    var port: Int

    init?(_ url: String) {
        guard let u = URLComponents(string: url), let scheme = u.scheme?.lowercased(),
            scheme == "http" || scheme == "https", var host = u.host, !host.isEmpty
        else { return nil }
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        self.scheme = scheme
        self.host = host.lowercased()
        self.port = u.port ?? (scheme == "https" ? 443 : 80)
    }

    var hostPort: String {
        let h = host.contains(":") ? "[\(host)]" : host
        let defaultPort = scheme == "https" ? 443 : 80
        return port == defaultPort ? h : "\(h):\(port)"
    }

    var isLoopback: Bool { isLoopbackHost(host) }
    var description: String { hostPort }
}

/// 127.0.0.0/8, ::1, and `localhost` / `*.localhost` when every address they resolve to is one
/// of those (a resolver may send `name.localhost` anywhere). Host without port or brackets.
func isLoopbackHost(_ host: String) -> Bool {
    let h = host.lowercased()
    if h == "::1" { return true }
    if h == "localhost" || h.hasSuffix(".localhost") { return resolvesOnlyToLoopback(h) }
    let parts = h.split(separator: ".", omittingEmptySubsequences: false)
    if parts.count == 4, parts.allSatisfy({ Int($0).map { (0...255).contains($0) } ?? false }), parts[0] == "127" {
        return true
    }
    return false
}

/// Splits `host:port`, `[v6]:port` into its host part.
func hostPart(of hostPort: String) -> String {
    if hostPort.hasPrefix("["), let close = hostPort.firstIndex(of: "]") {
        return String(hostPort[hostPort.index(after: hostPort.startIndex)..<close])
    }
    if let colon = hostPort.lastIndex(of: ":"), hostPort.filter({ $0 == ":" }).count == 1 {
        return String(hostPort[..<colon])
    }
    return hostPort
}

/// Registry error bodies: `{"errors":[{"code":"MANIFEST_UNKNOWN","message":"…"}]}`.
struct RegistryErrorBody: Decodable {
    struct Item: Decodable { var code: String?; var message: String? }
    var errors: [Item]?

    static func codes(in bytes: [UInt8]) -> [String] {
        (try? JSONDecoder().decode(RegistryErrorBody.self, from: Data(bytes)))?.errors?.compactMap(\.code) ?? []
    }
}

/// True when `name` resolves, and only to loopback addresses.
private func resolvesOnlyToLoopback(_ name: String) -> Bool {
    let scopes = AddressScope.resolve(name)
    return !scopes.isEmpty && scopes.allSatisfy { $0 == .loopback }
}
