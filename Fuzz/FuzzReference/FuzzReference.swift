// libFuzzer target: the image reference parser (what users type and what registries send back)
// and its round trip. Built only by scripts/fuzz.sh (UDOCKER_FUZZ=1).
import FuzzSupport
import OCI

func fuzzReference(_ input: UnsafeRawBufferPointer) {
    let s = String(decoding: input, as: UTF8.self)
    guard let r = try? ImageReference(parsing: s) else { return }
    // A parsed reference prints as one that parses back to the same image: the same registry,
    // repository and digest, and the same tag unless a digest pins the image (it then prints as
    // `name@digest`, the tag being only a label).
    guard let again = try? ImageReference(parsing: r.description), again.registry == r.registry,
        again.repository == r.repository, again.digest == r.digest, r.digest != nil || again.tag == r.tag,
        again.localName == r.localName, again.localTag == r.localTag
    else { fatalError("reference does not round-trip: \(s.debugDescription) -> \(r.description.debugDescription)") }
}

@_cdecl("FuzzReference_main")
public func fuzzReferenceMain(_ argc: Int32, _ argv: CArguments) -> Int32 { libFuzzerMain(argc, argv, fuzzReference) }
