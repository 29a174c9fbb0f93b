import Foundation
import Testing
import TestSupport
@testable import Engines
#if canImport(Glibc)
import Glibc
#endif

/// Malformed ELF files (issue 10, item 5: "a hostile /bin/sh must not crash F modes"). Each
/// crafted header used to reach an unchecked UInt64 addition or subtraction in the reader or the
/// patch planner, a trap that would kill every Fakechroot run of the image. Now each is a
/// refusal (nil, empty, or a `Failure`), never a crash.
@Suite struct ELFCorpusTests {
    struct PH {
        var type: UInt32; var offset: UInt64 = 0; var vaddr: UInt64 = 0; var filesz: UInt64 = 0; var memsz: UInt64 = 0;
        var align: UInt64 = 0x1000
    }

    /// A little-endian ELF64 executable: header, program headers, then `tail` at offset 0x200.
    static func elf(_ phs: [PH], shoff: UInt64 = 0, shnum: UInt16 = 0, shstrndx: UInt16 = 0, tail: [UInt8] = []) -> [UInt8] {
        var b = [UInt8](repeating: 0, count: 0x200)
        func put(_ o: Int, _ v: UInt64, _ n: Int) { for i in 0..<n { b[o + i] = UInt8(truncatingIfNeeded: v >> (8 * i)) } }
        b[0] = 0x7f; b[1] = 0x45; b[2] = 0x4c; b[3] = 0x46; b[4] = 2; b[5] = 1; b[6] = 1
        put(16, 2, 2); put(18, 0x3e, 2); put(20, 1, 4); put(32, 64, 8); put(40, shoff, 8)
        put(52, 64, 2); put(54, 56, 2); put(56, UInt64(phs.count), 2); put(58, 64, 2); put(60, UInt64(shnum), 2);
        put(62, UInt64(shstrndx), 2)
        for (i, p) in phs.enumerated() {
            let o = 64 + i * 56
            put(o, UInt64(p.type), 4); put(o + 4, 5, 4); put(o + 8, p.offset, 8); put(o + 16, p.vaddr, 8)
            put(o + 24, p.vaddr, 8); put(o + 32, p.filesz, 8); put(o + 40, p.memsz, 8); put(o + 48, p.align, 8)
        }
        return b + tail
    }

    static let interp = Array("/lib64/ld-linux-x86-64.so.2".utf8) + [0]
    static let note = [UInt8](repeating: 0, count: 16)  // namesz 0, descsz 0, type 0
    static let huge: UInt64 = 0xFFFF_FFFF_FFFF_F000

    /// Every accessor and the patch planner, on one file: must return, not trap.
    func exercise(_ bytes: [UInt8], _ tmp: TemporaryDirectory, _ name: String) throws -> Result<ELFPatchRecord?, Error> {
        let path = tmp.sub(name)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let fd = open(path, O_RDWR | O_CLOEXEC)
        try #require(fd >= 0)
        defer { close(fd) }
        if let elf = try? ELFFile(fd: fd) {
            _ = elf.interpreter; _ = elf.runpath; _ = elf.dynamicEntries; _ = elf.sectionHeaders
            _ = elf.section(named: ".interp"); _ = elf.versionsNeeded; _ = elf.versionsDefined
            for p in elf.programHeaders { _ = elf.noteHoldsGNUProperty(p); _ = elf.fileOffset(ofVirtualAddress: p.vaddr &+ 1) }
        }
        return Result { try ELFPatcher.plan(fd: fd, containerPath: "/bin/sh", prefix: "/some/prefix/ROOT") }
    }

    static let cases: [(String, [UInt8])] = {
        let i = UInt64(0x200), n = UInt64(interp.count)
        let dyn: [UInt8] = {  // DT_STRTAB far beyond everything, DT_RUNPATH 0, DT_NULL
            var d = [UInt8](repeating: 0, count: 48)
            func put(_ o: Int, _ v: UInt64) { for k in 0..<8 { d[o + k] = UInt8(truncatingIfNeeded: v >> (8 * k)) } }
            put(0, 5); put(8, huge); put(16, 29); put(24, 0)
            return d
        }()
        return [
            (
                "load-at-top-of-address-space",
                elf(
                    [
                        PH(type: 1, offset: 0, vaddr: huge, filesz: 0x200, memsz: 0x2000),
                        PH(type: 3, offset: i, vaddr: huge &+ i, filesz: n, memsz: n),
                        PH(type: 4, offset: i + n, filesz: 16),
                    ], tail: interp + note)
            ),
            (
                "load-file-size-wraps",
                elf(
                    [
                        PH(type: 1, offset: 0, vaddr: 0x400000, filesz: UInt64.max, memsz: 0x1000),
                        PH(type: 3, offset: i, vaddr: 0x400200, filesz: n, memsz: n),
                        PH(type: 4, offset: i + n, filesz: 16),
                    ], tail: interp + note)
            ),
            (
                "strtab-beyond-new-segment",
                elf(
                    [
                        PH(type: 1, offset: 0, vaddr: 0, filesz: 0x300, memsz: 0x300),
                        PH(type: 2, offset: i, vaddr: i, filesz: 48, memsz: 48),
                        PH(type: 4, offset: i + 48, filesz: 16),
                    ], tail: dyn + note)
            ),
            ("section-headers-at-2^64", elf([PH(type: 1, filesz: 0x200, memsz: 0x200)], shoff: UInt64.max - 8, shnum: 4, shstrndx: 1)),
            (
                "note-offset-wraps",
                elf([
                    PH(type: 1, filesz: 0x200, memsz: 0x200), PH(type: 4, offset: UInt64.max - 4, filesz: 64),
                    PH(type: 0x6474_e553, offset: UInt64.max - 2, filesz: 8),
                ])
            ),
            (
                "load-offset-wraps",
                elf(
                    [
                        PH(type: 1, offset: UInt64.max, vaddr: 0x1000, filesz: 0x1000, memsz: 0x1000),
                        PH(type: 3, offset: i, vaddr: 0x1800, filesz: n, memsz: n),
                        PH(type: 4, offset: i + n, filesz: 16),
                    ], tail: interp + note)
            ),
            ("truncated-header", Array(elf([]).prefix(52))),
            (
                "program-headers-past-end",
                {
                    var b = elf([PH(type: 1)]); b[56] = 0xff; b[57] = 0xff; return b
                }()
            ),
        ]
    }()

    @Test(arguments: cases.map(\.0))
    func craftedHeadersAreRefusedNotTrapped(_ name: String) throws {
        let tmp = try TemporaryDirectory()
        let bytes = try #require(Self.cases.first { $0.0 == name }?.1)
        let result = try exercise(bytes, tmp, name)
        // Either nothing to patch or a clean refusal; a patch plan must stay inside the file.
        if case .success(let record?) = result {
            for r in record.regions { #expect(r.offset < UInt64(bytes.count)) }
        }
    }

    /// The one that trapped in the planner before the fix: a load segment ending past 2^64.
    @Test func segmentPastTheAddressSpaceIsAFailure() throws {
        let tmp = try TemporaryDirectory()
        let result = try exercise(Self.cases[0].1, tmp, "top")
        guard case .failure(let error) = result else { Issue.record("expected a refusal, got \(result)"); return }
        #expect("\(error)".contains("out of range"))
    }
}
