// libFuzzer target: the ELF reader and the Fakechroot patch planner on arbitrary bytes (a hostile
// image's /bin/sh must never crash F modes). Built only by scripts/fuzz.sh (UDOCKER_FUZZ=1).
@testable import Engines
import FuzzSupport
#if canImport(Glibc)
import Glibc
#endif

let scratch = FuzzScratch("fuzz-elf")

func fuzzELF(_ input: UnsafeRawBufferPointer) {
    let fd = scratch.file("input", holding: input)
    defer { close(fd) }
    if let elf = try? ELFFile(fd: fd) {
        _ = elf.interpreter; _ = elf.runpath; _ = elf.dynamicEntries; _ = elf.sectionHeaders
        _ = elf.section(named: ".interp"); _ = elf.versionsNeeded; _ = elf.versionsDefined
        for p in elf.programHeaders { _ = elf.noteHoldsGNUProperty(p); _ = elf.fileOffset(ofVirtualAddress: p.vaddr) }
    }
    _ = try? ELFPatcher.plan(fd: fd, containerPath: "/bin/sh", prefix: "/fuzz/containers/x/ROOT")
}

@_cdecl("FuzzELF_main")
public func fuzzELFMain(_ argc: Int32, _ argv: CArguments) -> Int32 { libFuzzerMain(argc, argv, fuzzELF) }
