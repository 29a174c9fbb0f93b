import Foundation
import OCI
import TestSupport
import Testing

@testable import Registry

#if canImport(Glibc)
import Glibc
#endif

/// Case 23 of the safety checklist: a redirect from a registry on the internet into loopback,
/// link-local (cloud metadata) or the private network is refused; a registry that is itself
/// internal may redirect inward as far as its own scope.
@Suite struct RedirectScopeTests {
    @Test(arguments: [
        ("127.0.0.1", AddressScope.loopback), ("127.255.0.9", .loopback), ("0.0.0.0", .loopback), ("::1", .loopback),
        ("::", .loopback), ("::ffff:127.0.0.1", .loopback), ("169.254.169.254", .linkLocal), ("fe80::1", .linkLocal),
        ("fe80::1%eth0", .linkLocal), ("::ffff:169.254.169.254", .linkLocal), ("10.1.2.3", .privateNetwork),
        ("172.16.0.1", .privateNetwork), ("172.31.255.255", .privateNetwork), ("192.168.1.1", .privateNetwork),
        ("100.64.0.1", .privateNetwork), ("fd00::2", .privateNetwork), ("172.32.0.1", .publicInternet),
        ("8.8.8.8", .publicInternet), ("192.0.2.2", .publicInternet), ("2001:db8::1", .publicInternet),
    ])
    func literalsAreClassified(address: String, scope: AddressScope) {
        #expect(AddressScope(literal: address) == scope)
    }

    @Test func namesAreNotLiterals() {
        #expect(AddressScope(literal: "registry.example") == nil)
        #expect(AddressScope(literal: "127.0.0.1.example") == nil)
    }

    /// The decision, with names resolved by a table instead of DNS.
    @Test func inwardRedirectsFromTheInternetAreRefused() {
        let table: [String: [AddressScope]] = [
            "registry.example": [.publicInternet], "cdn.example": [.publicInternet, .publicInternet],
            "metadata.example": [.linkLocal], "both.example": [.publicInternet, .linkLocal],
            "mirror.site": [.privateNetwork], "node.cache": [.loopback],
        ]
        let resolve: (String) -> [AddressScope] = { table[$0] ?? [] }
        func refused(_ from: String, _ to: String) -> Bool { inwardRedirectRefusal(from: from, to: to, resolve: resolve) != nil }
        for target in [
            "127.0.0.1", "::1", "169.254.169.254", "fe80::1", "10.0.0.1", "192.168.0.10", "fd00::1", "metadata.example", "both.example",
            "node.cache",
        ] {
            #expect(refused("registry.example", target), "public → \(target)")
            #expect(refused("8.8.8.8", target), "public literal → \(target)")
        }
        #expect(!refused("registry.example", "cdn.example"))
        #expect(!refused("registry.example", "8.8.4.4"))
        #expect(!refused("registry.example", "unresolvable.example"))  // the connection fails by itself
        // A site mirror on the private network: its blob store there is fine, the node and metadata are not.
        #expect(!refused("mirror.site", "10.0.0.7"))
        #expect(!refused("mirror.site", "cdn.example"))
        #expect(refused("mirror.site", "127.0.0.1"))
        #expect(refused("mirror.site", "169.254.169.254"))
        // A registry on loopback (fixtures, a node-local cache) may stay on loopback or use the site network.
        #expect(!refused("127.0.0.1", "127.0.0.1"))
        #expect(!refused("node.cache", "::1"))
        #expect(!refused("127.0.0.1", "10.0.0.7"))
        #expect(refused("127.0.0.1", "169.254.169.254"))
        #expect(refused("127.0.0.1", "metadata.example"))
        let line = inwardRedirectRefusal(from: "registry.example", to: "metadata.example", resolve: resolve)
        #expect(line == "refusing redirect from public host registry.example to link-local address metadata.example")
    }

    /// Through a proxy, a target that does not resolve here is resolved by the proxy in its own
    /// network: refused where names resolve here; the token realm is checked like a redirect.
    @Test func unresolvableTargetsThroughAProxyAndTokenRealms() {
        let table: [String: [AddressScope]] = [
            "registry.example": [.publicInternet], "cdn.example": [.publicInternet], "mirror.site": [.privateNetwork],
        ]
        let resolve: (String) -> [AddressScope] = { table[$0] ?? [] }
        // Without a proxy the connection fails by itself.
        #expect(inwardRedirectRefusal(from: "registry.example", to: "metadata.internal", resolve: resolve) == nil)
        for from in ["registry.example", "8.8.8.8", "mirror.site", "127.0.0.1"] {
            #expect(inwardRedirectRefusal(from: from, to: "metadata.internal", viaProxy: true, resolve: resolve) != nil, "\(from)")
        }
        #expect(
            inwardRedirectRefusal(from: "registry.example", to: "metadata.internal", viaProxy: true, resolve: resolve)
                == "refusing redirect from public host registry.example to metadata.internal: the name does not resolve here, "
                + "and the proxy would resolve it in its own network")
        #expect(inwardRedirectRefusal(from: "registry.example", to: "cdn.example", viaProxy: true, resolve: resolve) == nil)
        #expect(inwardRedirectRefusal(from: "registry.example", to: "127.0.0.1", viaProxy: true, resolve: resolve) != nil)
        // A node that resolves no name (everything through the proxy) cannot tell: followed.
        #expect(inwardRedirectRefusal(from: "hub.example", to: "blobs.example", viaProxy: true, resolve: { _ in [] }) == nil)
        #expect(
            inwardRedirectRefusal(from: "registry.example", to: "127.0.0.1", what: "token realm", resolve: resolve)
                == "refusing token realm from public host registry.example to loopback address 127.0.0.1")
    }

    /// N3: a registry off loopback whose Bearer challenge names a token service on 127.0.0.1 (or
    /// the metadata address): refused before the token request; a realm on itself is followed.
    @Test(.enabled(if: Self.outerAddress != nil, "this host has no non-loopback IPv4 address to serve a registry on"))
    func aRegistryOffLoopbackCannotNameALoopbackTokenRealm() async throws {
        let address = try #require(Self.outerAddress)
        let reg = try await FakeRegistry(bindingTo: address)
        let client = try RegistryClient(
            options: RegistryOptions(
                insecure: true, credentials: CredentialStore(entries: [:]), maxAttempts: 2, retryBaseDelay: 0.05,
                maxRetryDelay: 1))
        let inner = try await StubServer { _ in .status(200, body: #"{"token":"inner-secret"}"#) }
        defer { Task { await inner.stop() } }
        _ = reg.putImage(repo: "x", tag: "latest", layers: [testBytes(100, seed: 3)])
        for realm in ["\(inner.base)/token", "http://169.254.169.254/token"] {
            reg.setHook { r in
                r.header("Authorization") == nil
                    ? .status(401, [("WWW-Authenticate", #"Bearer realm="\#(realm)",service="x""#)]) : nil
            }
            await expectFailure("refusing token realm from") {
                _ = try await client.resolveImage(ImageReference(parsing: "\(reg.host)/x:latest"), platform: nil)
            }
        }
        #expect(inner.requests.isEmpty)
        await client.shutdown()
        await reg.stop()
    }

    /// A real registry listening on this host's non-loopback address (seen as a public or private
    /// registry) redirects a blob, then a manifest, to a blob store on 127.0.0.1 and to the metadata
    /// address: each is refused with one line and nothing reaches the loopback store.
    @Test(.enabled(if: Self.outerAddress != nil, "this host has no non-loopback IPv4 address to serve a registry on"))
    func aRegistryOffLoopbackCannotRedirectToLoopback() async throws {
        let address = try #require(Self.outerAddress)
        let sourceScope = try #require(AddressScope(literal: address))
        let reg = try await FakeRegistry(bindingTo: address)
        let client = try RegistryClient(
            options: RegistryOptions(
                insecure: true, credentials: CredentialStore(entries: [:]), maxAttempts: 2, retryBaseDelay: 0.05,
                maxRetryDelay: 1))
        let dir = try TemporaryDirectory()
        let storage = try await StubServer { _ in .status(200, body: "must never be fetched") }
        defer { Task { await storage.stop() } }
        let bytes = testBytes(2_000, seed: 23)
        let desc = reg.putBlob(bytes)
        for target in ["\(storage.base)/blob?sig=1", "http://169.254.169.254/latest/meta-data/", "http://[::1]:\(storage.port)/x"] {
            reg.setHook { r in r.path.contains("/blobs/") ? .status(307, [("Location", target)]) : nil }
            await expectFailure("refusing redirect from \(sourceScope.rawValue) host \(address) to") {
                try await client.fetchBlobs(ImageReference(parsing: "\(reg.host)/x"), [desc], into: dir.path, progress: nil)
            }
        }
        let image = reg.putImage(repo: "x", tag: "latest", layers: [bytes])
        _ = image
        reg.setHook { r in r.path.contains("/manifests/") ? .status(302, [("Location", "\(storage.base)/m")]) : nil }
        await expectFailure("to loopback address 127.0.0.1") {
            _ = try await client.resolveImage(ImageReference(parsing: "\(reg.host)/x:latest"), platform: nil)
        }
        #expect(storage.requests.isEmpty)
        #expect(files(in: dir.path).allSatisfy { !$0.hasPrefix("sha256:") })
        // The same registry redirecting to itself (same scope) is followed.
        reg.setHook { r in
            r.path.contains("/blobs/") && r.query["hop"] == nil ? .status(307, [("Location", "\(reg.server.base)\(r.path)?hop=1")]) : nil
        }
        try await client.fetchBlobs(ImageReference(parsing: "\(reg.host)/x"), [desc], into: dir.path, progress: nil)
        #expect(sha(contents(dir.sub(desc.digest.description))) == Digest.sha256(of: bytes))
        await client.shutdown()
        await reg.stop()
    }

    /// The first IPv4 address of an interface that is up and not loopback.
    static let outerAddress: String? = {
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0, let first = list else { return nil }
        defer { freeifaddrs(first) }
        var cursor: UnsafeMutablePointer<ifaddrs>? = first
        while let ifa = cursor {
            defer { cursor = ifa.pointee.ifa_next }
            guard let sa = ifa.pointee.ifa_addr, sa.pointee.sa_family == sa_family_t(AF_INET),
                ifa.pointee.ifa_flags & UInt32(IFF_UP) != 0, ifa.pointee.ifa_flags & UInt32(IFF_LOOPBACK) == 0
            else { continue }
            let a = sa.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr.s_addr }
            let host = UInt32(bigEndian: a)
            if AddressScope(ipv4: host) == .linkLocal { continue }
            return "\(host >> 24).\((host >> 16) & 0xff).\((host >> 8) & 0xff).\(host & 0xff)"
        }
        return nil
    }()
}
