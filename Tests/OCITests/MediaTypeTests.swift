import Testing
@testable import OCI
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Every media type the client knows falls in exactly one class (index, manifest, schema 1, or
/// neither: configs and layers), so a registry's answer is never taken for the wrong kind.
@Suite struct MediaTypeTests {
    enum Kind: String, Sendable { case index, manifest, schema1, other }

    static let all: [(String, Kind)] = [
        (MediaType.ociIndex, .index), (MediaType.dockerManifestList, .index),
        (MediaType.ociManifest, .manifest), (MediaType.dockerManifest, .manifest),
        (MediaType.dockerManifestV1, .schema1), (MediaType.dockerManifestV1Signed, .schema1),
        (MediaType.dockerConfig, .other), (MediaType.ociConfig, .other), (MediaType.dockerLayerGzip, .other),
        (MediaType.dockerForeignLayer, .other), (MediaType.ociLayer, .other), (MediaType.ociLayerGzip, .other),
        (MediaType.ociLayerZstd, .other), (MediaType.ociLayerNondistributableGzip, .other),
        // Near misses: a parameter, another case, a prefix.
        (MediaType.ociManifest + "; charset=utf-8", .other), ("Application/vnd.oci.image.index.v1+json", .other),
        ("application/vnd.oci.image.manifest.v1", .other), ("", .other),
    ]

    @Test(arguments: all)
    func classifiesEachType(_ type: String, _ kind: Kind) {
        #expect(MediaType.isIndex(type) == (kind == .index))
        #expect(MediaType.isManifest(type) == (kind == .manifest))
        #expect(MediaType.isSchema1(type) == (kind == .schema1))
    }

    @Test func nilIsNoKind() {
        #expect(!MediaType.isIndex(nil) && !MediaType.isManifest(nil) && !MediaType.isSchema1(nil))
    }

    /// `pull`'s Accept header lists every manifest and index type once, and no config or layer.
    @Test func acceptListIsTheManifestKindsOnly() {
        #expect(Set(MediaType.manifestAccept).count == MediaType.manifestAccept.count)
        let expected = Set(Self.all.filter { $0.1 != .other }.map(\.0))
        #expect(Set(MediaType.manifestAccept) == expected)
    }

    /// The kind of a manifest document comes from its body when the media type is missing.
    @Test(arguments: [
        (#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json"}"#, Kind.index),
        (#"{"schemaVersion":2,"manifests":[]}"#, .index),
        (#"{"schemaVersion":1}"#, .schema1),
        (#"{"fsLayers":[]}"#, .schema1),
        (#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v1+prettyjws"}"#, .schema1),
        (#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}"#, .manifest),
    ])
    func manifestKindFromBody(_ json: String, _ kind: Kind) throws {
        let k = try JSONDecoder().decode(ManifestKind.self, from: Data(json.utf8))
        #expect(k.isIndex == (kind == .index))
        #expect(k.isSchema1 == (kind == .schema1))
    }
}
