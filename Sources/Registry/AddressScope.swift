#if canImport(Glibc)
import Glibc
#endif

/// Where an address lives, for deciding whether a redirect may send us there. A registry (or the
/// blob store it redirects to) on the public internet must not steer a pull to the user's own node
/// (loopback), to the cloud metadata service (link-local, 169.254.169.254), or into the site's
/// private network (RFC 1918, fc00::/7, 100.64/10): that is server-side request forgery run with the
/// user's network position.
public enum AddressScope: String, Sendable, CaseIterable {
    case publicInternet = "public"
    case privateNetwork = "private"
    case linkLocal = "link-local"
    case loopback

    /// The scopes a host in `self` may redirect to. A site mirror on a private address may use a
    /// blob store on the same network, a registry on loopback (our fixtures, a node-local cache) may
    /// also go to the private network; only a link-local registry may name link-local addresses.
    public func mayRedirect(to target: AddressScope) -> Bool {
        switch (self, target) {
        case (_, .publicInternet): return true
        case (.privateNetwork, .privateNetwork), (.loopback, .privateNetwork), (.loopback, .loopback): return true
        case (.linkLocal, .linkLocal): return true
        default: return false
        }
    }

    /// The scope of a literal IPv4 or IPv6 address (no brackets, no zone), nil for a name.
    public init?(literal: String) {
        var v4 = in_addr()
        var v6 = in6_addr()
        if inet_pton(AF_INET, literal, &v4) == 1 {
            self = AddressScope(ipv4: UInt32(bigEndian: v4.s_addr))
        } else if let pct = literal.firstIndex(of: "%"), inet_pton(AF_INET6, String(literal[..<pct]), &v6) == 1 {
            self = AddressScope(ipv6: withUnsafeBytes(of: v6) { Array($0) })
        } else if inet_pton(AF_INET6, literal, &v6) == 1 {
            self = AddressScope(ipv6: withUnsafeBytes(of: v6) { Array($0) })
        } else {
            return nil
        }
    }

    /// Host byte order.
    public init(ipv4 a: UInt32) {
        let b0 = a >> 24
        let b1 = (a >> 16) & 0xff
        switch b0 {
        case 127, 0: self = .loopback  // 0.0.0.0/8 reaches the local host on Linux
        case 10: self = .privateNetwork
        case 172 where (16...31).contains(b1): self = .privateNetwork
        case 192 where b1 == 168: self = .privateNetwork
        case 100 where (64...127).contains(b1): self = .privateNetwork  // carrier-grade NAT, often a site network
        case 169 where b1 == 254: self = .linkLocal
        default: self = .publicInternet
        }
    }

    /// 16 bytes, network order.
    public init(ipv6 b: [UInt8]) {
        precondition(b.count == 16)
        if b.prefix(15).allSatisfy({ $0 == 0 }) && (b[15] == 1 || b[15] == 0) {
            self = .loopback  // ::1, and :: which connects locally
        } else if b.prefix(10).allSatisfy({ $0 == 0 }) && b[10] == 0xff && b[11] == 0xff {
            // ::ffff:a.b.c.d, IPv4-mapped
            self = AddressScope(ipv4: UInt32(b[12]) << 24 | UInt32(b[13]) << 16 | UInt32(b[14]) << 8 | UInt32(b[15]))
        } else if b[0] == 0xfe && b[1] & 0xc0 == 0x80 {
            self = .linkLocal  // fe80::/10
        } else if b[0] & 0xfe == 0xfc {
            self = .privateNetwork  // fc00::/7, unique local
        } else {
            self = .publicInternet
        }
    }

    /// The scope a connection to `host` may reach: a literal's own scope, or for a name every
    /// address it resolves to, reduced to the most internal one (a name that resolves to both a
    /// public address and 169.254.169.254 counts as link-local). nil when the name does not
    /// resolve (the connection will fail by itself).
    public static func of(host: String, resolve: (String) -> [AddressScope] = AddressScope.resolve) -> AddressScope? {
        pick(host, [.linkLocal, .loopback, .privateNetwork, .publicInternet], resolve)
    }

    /// The scope a host *is* in, as a redirect source: its least internal address (a registry with
    /// a public address is a public registry even when it also has a private one).
    public static func ofSource(host: String, resolve: (String) -> [AddressScope] = AddressScope.resolve) -> AddressScope? {
        pick(host, [.publicInternet, .privateNetwork, .loopback, .linkLocal], resolve)
    }

    /// A literal's scope, or the first of `order` among the scopes `host` resolves to.
    private static func pick(_ host: String, _ order: [AddressScope], _ resolve: (String) -> [AddressScope]) -> AddressScope? {
        if let s = AddressScope(literal: host) { return s }
        let all = resolve(host)
        return order.first(where: all.contains)
    }

    /// The scopes of every address `name` resolves to (getaddrinfo; empty when it does not).
    public static func resolve(_ name: String) -> [AddressScope] {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(name, nil, &hints, &list) == 0, let first = list else { return [] }
        defer { freeaddrinfo(first) }
        var out: [AddressScope] = []
        var cursor: UnsafeMutablePointer<addrinfo>? = first
        while let ai = cursor {
            switch ai.pointee.ai_family {
            case AF_INET:
                let a = ai.pointee.ai_addr.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr.s_addr }
                out.append(AddressScope(ipv4: UInt32(bigEndian: a)))
            case AF_INET6:
                let bytes = ai.pointee.ai_addr.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { p in
                    withUnsafeBytes(of: p.pointee.sin6_addr) { Array($0) }
                }
                out.append(AddressScope(ipv6: bytes))
            default: break
            }
            cursor = ai.pointee.ai_next
        }
        return out
    }
}

/// Refuses a redirect from `from` (host, no port) to `to` when it would carry the request inward
/// (see `AddressScope`). Names are resolved first, so `metadata.example` pointing at
/// 169.254.169.254 counts as link-local. Returns the one-line reason, or nil when allowed.
/// The same check guards a Bearer challenge's token `realm` (`what`: "token realm"), which the
/// registry names just as freely as a `Location`.
///
/// A target that does not resolve here fails by itself, unless `viaProxy`: a proxy resolves it in
/// its own network, where it may be internal (`metadata.google.internal`). Then it is refused
/// whenever names resolve here (the source is a literal or resolves): a name only the proxy's
/// network knows is not the internet. A node that resolves no name at all (every connection
/// through the proxy, the source included) cannot tell, and follows it.
func inwardRedirectRefusal(
    from: String, to: String, what: String = "redirect", viaProxy: Bool = false,
    resolve: (String) -> [AddressScope] = AddressScope.resolve
) -> String? {
    guard let target = AddressScope.of(host: to, resolve: resolve) else {
        guard viaProxy, let source = AddressScope.ofSource(host: from, resolve: resolve) else { return nil }
        return "refusing \(what) from \(source.rawValue) host \(from) to \(to): the name does not resolve here, "
            + "and the proxy would resolve it in its own network"
    }
    if target == .publicInternet { return nil }
    let source = AddressScope.ofSource(host: from, resolve: resolve) ?? .publicInternet
    if source.mayRedirect(to: target) { return nil }
    return "refusing \(what) from \(source.rawValue) host \(from) to \(target.rawValue) address \(to)"
}
