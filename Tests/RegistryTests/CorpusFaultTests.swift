import Foundation
import OCI
import TestSupport
import Testing
@testable import Registry

/// Corpus cases 25 and 27 (docs/trust-boundaries.md) not asserted elsewhere: bounded token bodies
/// and foreign-layer URLs never fetched.
@Suite struct CorpusFaultTests {
    // §5.25: a token response over 1 MiB is refused without reading it all.
    @Test(arguments: [true, false])
    func oversizedTokenResponseIsRefused(announced: Bool) async throws {
        try await withRegistry { reg, client, _ in
            reg.setAuth(.bearer(basic: nil, field: "token"))
            reg.putImage(repo: "app", tag: "latest", layers: [testBytes(10, seed: 91)])
            let body = Array(#"{"token":""#.utf8) + [UInt8](repeating: 0x61, count: (1 << 20) + 10) + Array(#""}"#.utf8)
            reg.setHook { r in
                guard r.path.hasPrefix("/token") else { return nil }
                // Without Content-Length the limit applies while streaming.
                return announced
                    ? .respond(status: 200, headers: [("Content-Type", "application/json")], body: body)
                    : .respond(status: 200, headers: [("Content-Type", "application/json"), ("Transfer-Encoding", "chunked")], body: body)
            }
            await expectFailure("token response is larger than the 1048576-byte limit") {
                _ = try await client.resolveImage(ImageReference(parsing: "\(reg.host)/app"), platform: nil)
            }
        }
    }

    // §5.27: a layer descriptor's foreign `urls` are never fetched; the blob comes from the registry.
    @Test func foreignLayerURLsAreNotFetched() async throws {
        let foreign = try await FakeRegistry()
        try await withRegistry { reg, client, dir in
            let layer = testBytes(3000, seed: 92)
            var d = reg.putBlob(layer)
            d.mediaType = MediaType.dockerForeignLayer
            d.urls = ["\(foreign.server.base)/evil.tar.gz", "http://169.254.169.254/latest/meta-data/"]
            let cfg = ImageConfig(architecture: "amd64", os: "linux", rootfs: .init(diffIDs: [d.digest]))
            var c = reg.putBlob(Array(try JSONEncoder.sorted.encode(cfg)))
            c.mediaType = MediaType.ociConfig
            reg.putManifest(
                repo: "win", reference: "latest", bytes: Array(try JSONEncoder.sorted.encode(Manifest(config: c, layers: [d]))),
                contentType: MediaType.ociManifest)
            let ref = try ImageReference(parsing: "\(reg.host)/win")
            let resolved = try await client.resolveImage(ref, platform: nil)
            try await client.fetchBlobs(ref, resolved.blobs, into: dir.path, progress: nil)
            #expect(contents(dir.sub(d.digest.description)) == layer)
            #expect(foreign.server.requests(matching: "/").isEmpty, "a foreign URL was fetched")
        }
        await foreign.stop()
    }
}
