// libFuzzer target: the ELF reader and the Fakechroot patch planner on arbitrary bytes (a hostile
// image's /bin/sh must never crash F modes). Built only by `make fuzz` (UDOCKER_FUZZ=1).
@testable import Engines
import Foundation
#if canImport(Glibc)
import Glibc
#endif

let input: String = {
    var t = Array("/tmp/udocker-fuzz-elf-XXXXXX".utf8CString)
    return String(cString: mkdtemp(&t)!) + "/input"
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzELF(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let fd = open(input, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
    defer { close(fd) }
    var off = 0
    while off < size { let n = write(fd, data + off, size - off); if n <= 0 { break }; off += n }
    if let elf = try? ELFFile(fd: fd) {
        _ = elf.interpreter; _ = elf.runpath; _ = elf.dynamicEntries; _ = elf.sectionHeaders
        _ = elf.section(named: ".interp"); _ = elf.versionsNeeded; _ = elf.versionsDefined
        for p in elf.programHeaders { _ = elf.noteHoldsGNUProperty(p); _ = elf.fileOffset(ofVirtualAddress: p.vaddr) }
    }
    _ = try? ELFPatcher.plan(fd: fd, containerPath: "/bin/sh", prefix: "/fuzz/containers/x/ROOT")
    return 0
}

// SwiftPM links a debug executable with `main = FuzzELF_main` (testable executables); this entry
// point hands over to libFuzzer's driver (C ABI; plain pointer arguments).
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<Int32>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt
) -> CInt

@_cdecl("FuzzELF_main")
public func FuzzELFMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    var c = argc, v = argv
    return LLVMFuzzerRunDriver(&c, &v, { fuzzELF($0, $1) })
}
