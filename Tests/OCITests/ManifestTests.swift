import Foundation
import Testing
@testable import OCI

@Suite struct ManifestTests {
    static let d1 = "sha256:" + String(repeating: "1", count: 64)
    static let d2 = "sha256:" + String(repeating: "2", count: 64)

    @Test func decodesDockerSchema2() throws {
        let json = """
            {"schemaVersion":2,"mediaType":"\(MediaType.dockerManifest)",
             "config":{"mediaType":"\(MediaType.dockerConfig)","size":7,"digest":"\(Self.d1)"},
             "layers":[{"mediaType":"\(MediaType.dockerLayerGzip)","size":32,"digest":"\(Self.d2)"}]}
            """
        let m = try JSONDecoder().decode(Manifest.self, from: Data(json.utf8))
        #expect(m.config.digest.description == Self.d1 && m.config.size == 7)
        #expect(m.layers.map(\.digest.description) == [Self.d2])
        let kind = try JSONDecoder().decode(ManifestKind.self, from: Data(json.utf8))
        #expect(!kind.isIndex && !kind.isSchema1 && MediaType.isManifest(kind.mediaType))
    }

    @Test func aManifestWithAHostileDigestDoesNotDecode() {
        let json = """
            {"schemaVersion":2,"config":{"mediaType":"x","size":1,"digest":"sha256:../../etc"},"layers":[]}
            """
        #expect(throws: (any Error).self) { try JSONDecoder().decode(Manifest.self, from: Data(json.utf8)) }
    }

    @Test func indexPicksTheFirstMatchingPlatform() throws {
        let json = """
            {"schemaVersion":2,"mediaType":"\(MediaType.ociIndex)","manifests":[
              {"mediaType":"\(MediaType.ociManifest)","size":1,"digest":"\(Self.d1)","platform":{"os":"linux","architecture":"arm","variant":"v7"}},
              {"mediaType":"\(MediaType.ociManifest)","size":2,"digest":"\(Self.d2)","platform":{"os":"linux","architecture":"amd64"}}]}
            """
        let index = try JSONDecoder().decode(Index.self, from: Data(json.utf8))
        #expect(index.manifest(for: Platform(os: "linux", architecture: "amd64"))?.digest.description == Self.d2)
        #expect(index.manifest(for: Platform(os: "linux", architecture: "arm"))?.digest.description == Self.d1)
        #expect(index.manifest(for: Platform(os: "linux", architecture: "s390x")) == nil)
        #expect(index.platforms == ["linux/arm/v7", "linux/amd64"])
        #expect(try JSONDecoder().decode(ManifestKind.self, from: Data(json.utf8)).isIndex)
    }

    @Test func recognisesSchema1AndUntypedIndexes() throws {
        let s1 = #"{"schemaVersion":1,"name":"x","tag":"y","fsLayers":[{"blobSum":"sha256:00"}]}"#
        #expect(try JSONDecoder().decode(ManifestKind.self, from: Data(s1.utf8)).isSchema1)
        let untyped = #"{"schemaVersion":2,"manifests":[]}"#
        #expect(try JSONDecoder().decode(ManifestKind.self, from: Data(untyped.utf8)).isIndex)
        #expect(MediaType.isSchema1(MediaType.dockerManifestV1Signed))
        #expect(MediaType.isIndex(MediaType.dockerManifestList) && !MediaType.isIndex(MediaType.ociManifest))
    }

    @Test func imageConfigFallsBackToContainerConfig() throws {
        let json =
            #"{"architecture":"amd64","os":"linux","container_config":{"Cmd":["sh"],"Env":["A=1"]},"rootfs":{"type":"layers","diff_ids":["\#(Self.d1)"]}}"#
        let c = try JSONDecoder().decode(ImageConfig.self, from: Data(json.utf8))
        #expect(c.effectiveConfig.cmd == ["sh"] && c.effectiveConfig.env == ["A=1"])
        #expect(c.rootfs?.diffIDs.map(\.description) == [Self.d1])
        let bad = #"{"rootfs":{"type":"layers","diff_ids":["sha256:nothex"]}}"#
        #expect(throws: (any Error).self) { try JSONDecoder().decode(ImageConfig.self, from: Data(bad.utf8)) }
    }

    @Test func manifestAcceptListPrefersIndexesAndNamesEveryKind() {
        #expect(MediaType.manifestAccept.first == MediaType.ociIndex)
        for t in [MediaType.ociManifest, MediaType.dockerManifest, MediaType.dockerManifestList, MediaType.dockerManifestV1] {
            #expect(MediaType.manifestAccept.contains(t))
        }
    }
}
