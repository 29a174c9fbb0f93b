// libFuzzer target: the OCI/Docker manifest, index, config and digest decoders on arbitrary
// bytes. Built only by `make fuzz` (UDOCKER_FUZZ=1).
import Foundation
import OCI

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzManifest(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Data(bytes: data, count: size)
    let d = JSONDecoder()
    if let m = try? d.decode(Manifest.self, from: bytes) { _ = m.layers.map(\.digest.fileName) }
    if let i = try? d.decode(Index.self, from: bytes) { _ = i.manifests.count }
    _ = try? d.decode(ManifestKind.self, from: bytes)
    _ = try? d.decode(ImageConfig.self, from: bytes)
    let s = String(decoding: bytes, as: UTF8.self)
    _ = try? Digest(parsing: s)
    _ = try? Platform(parsing: s)
    return 0
}

// SwiftPM links a debug executable with `main = FuzzManifest_main` (testable executables); this entry
// point hands over to libFuzzer's driver (C ABI; plain pointer arguments).
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<Int32>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt
) -> CInt

@_cdecl("FuzzManifest_main")
public func FuzzManifestMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    var c = argc, v = argv
    return LLVMFuzzerRunDriver(&c, &v, { fuzzManifest($0, $1) })
}
