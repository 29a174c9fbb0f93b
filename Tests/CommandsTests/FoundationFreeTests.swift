import Foundation
import Testing

// Issue 11: the binary must not use Foundation (only FoundationEssentials): Foundation pulls in
// ICU and its 34 MB of data. The sources import FoundationEssentials, so a Foundation-only API
// does not compile; this guards against `import Foundation` coming back with such a use, in our
// code or in a dependency. Checked on the debug binary, which links the Swift libraries
// dynamically: none of its undefined dynamic symbols may be one that libFoundation.so,
// libFoundationInternationalization.so or lib_FoundationICU.so defines. (The libraries may stay
// in DT_NEEDED: swift-crypto imports Foundation, which autolinks it, but uses only Essentials
// types; a static release link takes only the archive members something references.)

/// The binary under test: `UDOCKER_FOUNDATION_CHECK_BIN`, else `udocker` next to the test bundle.
private let binaryUnderTest: String = {
    if let b = ProcessInfo.processInfo.environment["UDOCKER_FOUNDATION_CHECK_BIN"], !b.isEmpty { return b }
    let me = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? ""
    return URL(fileURLWithPath: me).deletingLastPathComponent().appendingPathComponent("udocker").path
}()

@Suite("No Foundation in the binary")
struct FoundationFreeTests {
    static let forbidden = ["libFoundation.so", "libFoundationInternationalization.so", "lib_FoundationICU.so"]

    @Test(
        "no symbol of Foundation, FoundationInternationalization or ICU is used",
        .enabled(
            if: FileManager.default.isExecutableFile(atPath: binaryUnderTest)
                && DynamicELF(binaryUnderTest)?.needed.isEmpty == false,
            "needs the dynamically linked debug udocker next to the test bundle (swift build --build-tests)"))
    func noFoundationSymbols() throws {
        let binary = try #require(DynamicELF(binaryUnderTest))
        let used = Set(binary.undefined)
        #expect(!used.isEmpty, "no undefined dynamic symbols read from \(binaryUnderTest)")
        for name in Self.forbidden where binary.needed.contains(name) {
            let dirs = binary.runpath + ["/usr/lib/swift/linux", "/usr/lib"]
            let lib = try #require(
                dirs.map { "\($0)/\(name)" }.first { FileManager.default.fileExists(atPath: $0) },
                "\(name) is in DT_NEEDED but not found in \(dirs)")
            let defined = try #require(DynamicELF(lib)).defined
            #expect(!defined.isEmpty, "no symbols read from \(lib)")
            let leaks = used.intersection(defined).sorted()
            #expect(
                leaks.isEmpty,
                "\(binaryUnderTest) uses \(leaks.count) symbol(s) of \(name), e.g. \(leaks.prefix(8).joined(separator: " "))")
        }
    }
}

/// The dynamic section and dynamic symbols of a 64-bit little-endian ELF file.
struct DynamicELF {
    var needed: [String] = []
    var runpath: [String] = []
    var undefined: [String] = []
    var defined: [String] = []

    init?(_ path: String) {
        guard let d = FileManager.default.contents(atPath: path), d.count > 64, d.starts(with: [0x7f, 0x45, 0x4c, 0x46]),
            d[4] == 2, d[5] == 1
        else { return nil }
        let bytes = [UInt8](d)
        func u(_ off: Int, _ n: Int) -> Int {
            guard off >= 0, off + n <= bytes.count else { return 0 }
            var v = 0
            for i in (0..<n).reversed() { v = v << 8 | Int(bytes[off + i]) }
            return v
        }
        func cString(_ off: Int) -> String {
            guard off >= 0, off < bytes.count else { return "" }
            let end = bytes[off...].firstIndex(of: 0) ?? bytes.count
            return String(decoding: bytes[off..<end], as: UTF8.self)
        }
        let shoff = u(0x28, 8), shentsize = u(0x3a, 2), shnum = u(0x3c, 2)
        struct Section { var type: Int, offset: Int, size: Int, link: Int, entsize: Int }
        let sections = (0..<shnum).map { i -> Section in
            let b = shoff + i * shentsize
            return Section(type: u(b + 4, 4), offset: u(b + 0x18, 8), size: u(b + 0x20, 8), link: u(b + 0x28, 4), entsize: u(b + 0x38, 8))
        }
        for s in sections where s.type == 6 /* SHT_DYNAMIC */ && s.link < sections.count {
            let strtab = sections[s.link].offset
            for e in stride(from: s.offset, to: s.offset + s.size, by: 16) {
                let tag = u(e, 8), value = u(e + 8, 8)
                if tag == 1 { needed.append(cString(strtab + value)) }
                if tag == 29 || tag == 15 {
                    runpath += cString(strtab + value).split(separator: ":").map(String.init)
                }
            }
        }
        for s in sections where s.type == 11 /* SHT_DYNSYM */ && s.link < sections.count && s.entsize == 24 {
            let strtab = sections[s.link].offset
            for e in stride(from: s.offset + 24, to: s.offset + s.size, by: 24) {
                let name = cString(strtab + u(e, 4)), shndx = u(e + 6, 2)
                if name.isEmpty { continue }
                if shndx == 0 { undefined.append(name) } else { defined.append(name) }
            }
        }
    }
}
