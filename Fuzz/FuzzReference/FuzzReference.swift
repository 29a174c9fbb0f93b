// libFuzzer target: the image reference parser (what users type and what registries send back)
// and its round trip. Built only by `make fuzz` (UDOCKER_FUZZ=1).
import Foundation
import Registry

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzReference(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let s = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    if let r = try? ImageReference(parsing: s) {
        // A parsed reference prints as something that parses to the same reference.
        guard let again = try? ImageReference(parsing: r.description), again == r else {
            fatalError("reference does not round-trip: \(s.debugDescription) -> \(r.description.debugDescription)")
        }
    }
    return 0
}

// SwiftPM links a debug executable with `main = FuzzReference_main` (testable executables); this entry
// point hands over to libFuzzer's driver (C ABI; plain pointer arguments).
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<Int32>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt
) -> CInt

@_cdecl("FuzzReference_main")
public func FuzzReferenceMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    var c = argc, v = argv
    return LLVMFuzzerRunDriver(&c, &v, { fuzzReference($0, $1) })
}
