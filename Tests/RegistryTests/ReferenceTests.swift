import Foundation
import OCI
import TestSupport
import Testing
@testable import Registry

@Suite struct CredentialStoreTests {
    @Test func keystoreAndDockerConfig() throws {
        let dir = try TemporaryDirectory()
        let ks = dir.sub("keystore")
        try
            #"{"https://quay.io": {"auth": "cXVheTpwdw==", "email": ""}, "http://127.0.0.1:5000": {"auth": "bG9jYWw6cHc="}, "https://registry-1.docker.io": {"auth": "aHViOnB3"}}"#
            .write(toFile: ks, atomically: true, encoding: .utf8)
        chmod(ks, 0o600)
        let dc = dir.sub("config.json")
        try
            #"{"auths": {"ghcr.io": {"auth": "Z2g6cHc="}, "quay.io": {"auth": "b3RoZXI6cHc="}, "example.com:444": {"username": "u", "password": "p"}}}"#
            .write(toFile: dc, atomically: true, encoding: .utf8)
        let store = CredentialStore(udockerKeystore: ks, dockerConfig: dc)
        #expect(store.warnings.isEmpty)
        #expect(store.authorization(forRegistry: "quay.io") == "cXVheTpwdw==")  // keystore wins
        #expect(store.authorization(forRegistry: "https://quay.io") == "cXVheTpwdw==")
        #expect(store.authorization(forRegistry: "127.0.0.1:5000") == "bG9jYWw6cHc=")
        #expect(store.authorization(forRegistry: "ghcr.io") == "Z2g6cHc=")
        #expect(store.authorization(forRegistry: "docker.io") == "aHViOnB3")
        #expect(store.authorization(forRegistry: "index.docker.io") == "aHViOnB3")
        #expect(store.authorization(forRegistry: "example.com:444") == Data("u:p".utf8).base64EncodedString())
        #expect(store.authorization(forRegistry: "127.0.0.1:5001") == nil)
        #expect(store.authorization(forRegistry: "example.org") == nil)
    }

    @Test func keystoreReadableByOthersIsIgnored() throws {
        let dir = try TemporaryDirectory()
        let ks = dir.sub("keystore")
        try #"{"https://quay.io": {"auth": "cXVheTpwdw=="}}"#.write(toFile: ks, atomically: true, encoding: .utf8)
        chmod(ks, 0o644)
        let store = CredentialStore(udockerKeystore: ks, dockerConfig: nil)
        #expect(store.authorization(forRegistry: "quay.io") == nil)
        #expect(store.warnings.count == 1)
        #expect(store.warnings.first?.contains("readable or writable by others") == true)
    }

    @Test func missingOrBrokenFiles() throws {
        let dir = try TemporaryDirectory()
        let bad = dir.sub("bad.json")
        try "not json".write(toFile: bad, atomically: true, encoding: .utf8)
        let store = CredentialStore(udockerKeystore: dir.sub("absent"), dockerConfig: bad)
        #expect(store.isEmpty)
        #expect(store.warnings.count == 1)
    }
}

@Suite struct ProtocolHelperTests {
    @Test func challengeParsing() throws {
        let c = try #require(
            AuthChallenge(
                #"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/debian:pull,push",error="insufficient_scope""#
            ))
        #expect(c.scheme == "bearer")
        #expect(c.realm == "https://auth.docker.io/token")
        #expect(c.parameters["service"] == "registry.docker.io")
        #expect(c.parameters["scope"] == "repository:library/debian:pull,push")
        #expect(c.parameters["error"] == "insufficient_scope")
        let b = try #require(AuthChallenge(#"Basic realm="Registry Realm""#))
        #expect(b.scheme == "basic")
        #expect(b.realm == "Registry Realm")
        let unquoted = try #require(AuthChallenge("Bearer realm=https://r/t, service=s"))
        #expect(unquoted.realm == "https://r/t")
        #expect(unquoted.parameters["service"] == "s")
        #expect(AuthChallenge("") == nil)
    }

    @Test func retryAfter() {
        let now = Date(timeIntervalSince1970: 784_111_777)  // Sun, 06 Nov 1994 08:49:37 GMT
        #expect(parseRetryAfter("2", now: now) == 2)
        #expect(parseRetryAfter(" 120 ", now: now) == 120)
        #expect(parseRetryAfter("Sun, 06 Nov 1994 08:49:40 GMT", now: now) == 3)
        #expect(parseRetryAfter("Sun, 06 Nov 1994 08:49:00 GMT", now: now) == 0)  // past → 0
        #expect(parseRetryAfter("soon", now: now) == nil)
        #expect(parseRetryAfter("-5", now: now) == nil)
        #expect(parseRetryAfter(nil, now: now) == nil)
    }

    @Test func contentRange() {
        #expect(ContentRange("bytes 100-199/200") == ContentRange("bytes 100-199/200"))
        let r = ContentRange("bytes 100-199/200")
        #expect(r?.start == 100 && r?.end == 199 && r?.total == 200)
        #expect(ContentRange("bytes 5-9/*")?.total == nil)
        #expect(ContentRange("bytes 9-5/10") == nil)
        #expect(ContentRange("bytes 0-9/9") == nil)
        #expect(ContentRange("items 0-9/10") == nil)
        #expect(ContentRange(nil) == nil)
    }

    @Test func loopbackHosts() {
        for h in ["localhost", "127.0.0.1", "127.1.2.3", "::1"] { #expect(isLoopbackHost(h), "\(h)") }
        for h in ["128.0.0.1", "example.com", "10.0.0.1", "127.0.0.1.evil.com"] { #expect(!isLoopbackHost(h), "\(h)") }
        #expect(hostPart(of: "127.0.0.1:5000") == "127.0.0.1")
        #expect(hostPart(of: "[::1]:5000") == "::1")
        #expect(hostPart(of: "quay.io") == "quay.io")
    }

    @Test func proxies() throws {
        let socks = try RegistryClient.parseProxy("socks5://10.0.0.1:1081")
        #expect(socks.host == "10.0.0.1" && socks.port == 1081)
        let http = try RegistryClient.parseProxy("http://user:pw@proxy.example:3128")
        #expect(http.host == "proxy.example" && http.port == 3128 && http.authorization != nil)
        let bare = try RegistryClient.parseProxy("proxy.example:8080")
        #expect(bare.port == 8080)
        #expect(throws: RegistryError.self) { try RegistryClient.parseProxy("https://proxy.example:443") }
        #expect(throws: RegistryError.self) { try RegistryClient.parseProxy("ftp://proxy.example") }
    }

    @Test func endpoints() async throws {
        let hub = try RegistryClient(options: RegistryOptions())
        let e1 = try await hub.endpoint(for: ImageReference(parsing: "debian"))
        #expect(e1.base == "https://registry-1.docker.io" && e1.repository == "library/debian")
        let e2 = try await hub.endpoint(for: ImageReference(parsing: "biocontainers/x"))
        #expect(e2.repository == "biocontainers/x")
        let e3 = try await hub.endpoint(for: ImageReference(parsing: "127.0.0.1:5000/debian"))
        #expect(e3.base == "http://127.0.0.1:5000" && e3.repository == "debian")
        let e4 = try await hub.endpoint(for: ImageReference(parsing: "quay.io/x/y"))
        #expect(e4.base == "https://quay.io" && e4.repository == "x/y")
        let e5 = try await hub.endpoint(for: ImageReference(parsing: "docker.io/centos"))
        #expect(e5.base == "https://registry-1.docker.io" && e5.repository == "library/centos")
        await hub.shutdown()

        let local = try RegistryClient(options: RegistryOptions(registryURL: "http://127.0.0.1:5000"))
        let e6 = try await local.endpoint(for: ImageReference(parsing: "debian"))
        // A one-word name under a configured registry: library/<name> first, the name as typed next.
        #expect(e6.base == "http://127.0.0.1:5000" && e6.repository == "library/debian" && e6.unprefixed == "debian")
        await local.shutdown()

        let noScheme = try RegistryClient(options: RegistryOptions(registryURL: "quay.io"))
        #expect(try await noScheme.endpoint(for: ImageReference(parsing: "x/y")).base == "https://quay.io")
        await noScheme.shutdown()

        #expect(throws: RegistryError.self) { try RegistryClient(options: RegistryOptions(registryURL: "ftp://x")) }
    }
}
