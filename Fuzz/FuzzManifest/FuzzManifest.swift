// libFuzzer target: the OCI/Docker manifest, index, config and digest decoders on arbitrary
// bytes, and the image configuration's direct reading against JSONDecoder. Built only by
// scripts/fuzz.sh (UDOCKER_FUZZ=1).
import FuzzSupport
import OCI
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// What decodes re-encodes to JSON that decodes to the same value (udocker writes these documents
/// back into the repository and reads them again).
func roundTrips<T: Codable & Equatable>(_ value: T) {
    guard let data = try? JSONEncoder().encode(value), let again = try? JSONDecoder().decode(T.self, from: data), again == value else {
        fatalError("\(T.self) does not round-trip: \(value)")
    }
}

func fuzzManifest(_ input: UnsafeRawBufferPointer) {
    let bytes = Data(input)
    let d = JSONDecoder()
    if let m = try? d.decode(Manifest.self, from: bytes) {
        _ = m.layers.map(\.digest.fileName)
        roundTrips(m)
    }
    if let i = try? d.decode(Index.self, from: bytes) {
        _ = i.manifest(for: .host)
        roundTrips(i)
    }
    if let k = try? d.decode(ManifestKind.self, from: bytes) { _ = (k.isIndex, k.isSchema1) }
    let decoded = try? d.decode(ImageConfig.self, from: bytes)
    if let c = decoded {
        _ = c.effectiveConfig
        roundTrips(c)
    }
    // The run path's direct reading answers only what JSONDecoder answers, with the same value.
    if let fast = ImageConfig.fastDecode(Array(input.bindMemory(to: UInt8.self))), fast != decoded {
        fatalError("ImageConfig.fastDecode differs from JSONDecoder: \(fast) vs \(String(describing: decoded))")
    }
    let s = String(decoding: input, as: UTF8.self)
    if let digest = try? Digest(parsing: s), (try? Digest(parsing: digest.description)) != digest {
        fatalError("digest does not round-trip: \(s.debugDescription)")
    }
    _ = try? Platform(parsing: s)
}

@_cdecl("FuzzManifest_main")
public func fuzzManifestMain(_ argc: Int32, _ argv: CArguments) -> Int32 { libFuzzerMain(argc, argv, fuzzManifest) }
