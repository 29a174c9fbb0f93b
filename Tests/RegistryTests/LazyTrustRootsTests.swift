import Foundation
import OCI
import TestSupport
import Testing
@testable import Registry

/// Issue 11 §4: `SSL_CERT_FILE` / `SSL_CERT_DIR` (often `/etc/ssl/certs`, ~280 PEM files, ~20 ms of
/// CPU to parse) are read only once an https URL is requested; a pull from a plain-HTTP registry
/// never reads them.
@Suite struct LazyTrustRootsTests {
    @Test("a plain-HTTP pull does not load the extra authorities; the first https request does")
    func loadedOnFirstHTTPS() async throws {
        let certs = try TemporaryDirectory()
        try Data("not a certificate".utf8).write(to: certs.url("site-ca.pem"))
        let reg = try await FakeRegistry()
        let image = reg.putImage(repo: "library/app", tag: "1", layers: [testBytes(10, seed: 11)])
        var options = RegistryOptions(registryURL: reg.server.base)
        options.environment = ["SSL_CERT_DIR": certs.path]
        let client = try RegistryClient(options: options)
        let ref = try ImageReference(parsing: "app:1")
        #expect(try await client.resolveImage(ref, platform: nil).manifestDigest == image.manifest.digest)
        let dir = try TemporaryDirectory()
        try await client.fetchBlobs(ref, image.layers, into: dir.path, progress: nil)
        #expect(client.tls != nil)
        #expect(client.tls?.existing == nil, "the certificates were loaded for a plain-HTTP pull")
        #expect(client.client(for: "http://\(reg.host)/v2/") === client.http)
        let secure = client.client(for: "https://registry.example/v2/")
        #expect(client.tls?.existing === secure)
        #expect(client.client(for: "HTTPS://registry.example/v2/") === secure, "one client, made once")
        await client.shutdown(); await reg.stop()
    }

    @Test("no extra authorities, or --insecure: one client for both schemes")
    func noExtraClient() async throws {
        var options = RegistryOptions(registryURL: "http://127.0.0.1:1")
        options.environment = [:]
        let plain = try RegistryClient(options: options)
        #expect(plain.tls == nil)
        #expect(plain.client(for: "https://registry.example/v2/") === plain.http)
        options.environment = ["SSL_CERT_FILE": "/nonexistent.pem"]
        options.insecure = true
        let insecure = try RegistryClient(options: options)
        #expect(insecure.tls == nil)
        await plain.shutdown(); await insecure.shutdown()
    }
}
