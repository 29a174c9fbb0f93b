import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif

/// Symbol versioning (GNU `.gnu.version_r` / `.gnu.version_d`), read through the dynamic section.
extension ELFFile {
    static let DT_VERDEF: Int64 = 0x6fff_fffc, DT_VERDEFNUM: Int64 = 0x6fff_fffd
    static let DT_VERNEED: Int64 = 0x6fff_fffe, DT_VERNEEDNUM: Int64 = 0x6fff_ffff

    /// Versions this file needs, per library (`libc.so.6` → [`GLIBC_2.2.5`, `GLIBC_2.34`]).
    var versionsNeeded: [String: [String]] {
        let dyn = dynamicEntries
        guard let strtab = dyn.first(where: { $0.tag == Self.DT_STRTAB })?.value,
            let start = dyn.first(where: { $0.tag == Self.DT_VERNEED })?.value,
            let count = dyn.first(where: { $0.tag == Self.DT_VERNEEDNUM })?.value,
            var at = fileOffset(ofVirtualAddress: start)
        else { return [:] }
        var out: [String: [String]] = [:]
        for _ in 0..<min(count, 256) {
            guard let b = readBytes(at, 16) else { break }
            let cnt = Int(Self.u16(b, 2, littleEndian)), file = Self.u32(b, 4, littleEndian)
            let aux = UInt64(Self.u32(b, 8, littleEndian)), next = UInt64(Self.u32(b, 12, littleEndian))
            let lib = string(strtab, file) ?? "?"
            var a = at + aux
            for _ in 0..<min(cnt, 256) {
                guard aux > 0, let v = readBytes(a, 16) else { break }
                if let name = string(strtab, Self.u32(v, 8, littleEndian)) { out[lib, default: []].append(name) }
                let n = UInt64(Self.u32(v, 12, littleEndian))
                if n == 0 { break }
                a += n
            }
            if next == 0 { break }
            at += next
        }
        return out
    }

    /// Each undefined dynamic symbol that needs a version, with that version and its library:
    /// (`stat`, `GLIBC_2.33`, `libc.so.6`). Read from `.dynsym` and `.gnu.version` (64-bit files);
    /// the version floor of the dist binary is checked with it (`DistBinaryTests`).
    static func symbolVersionNeeds(path: String) -> [(symbol: String, version: String, library: String)]? {
        withFile(path) { $0.symbolVersionNeeds }
    }

    /// `DT_NEEDED` names and the versions needed per library, for the same check.
    static func dynamicNeeds(path: String) -> (libraries: [String], versions: [String: [String]])? {
        withFile(path) { elf in
            let dyn = elf.dynamicEntries
            guard let strtab = dyn.first(where: { $0.tag == Self.DT_STRTAB })?.value else { return ([], elf.versionsNeeded) }
            let libraries = dyn.filter { $0.tag == 1 }.prefix(256).compactMap { elf.string(strtab, UInt32(truncatingIfNeeded: $0.value)) }
            return (libraries, elf.versionsNeeded)
        }
    }

    var symbolVersionNeeds: [(symbol: String, version: String, library: String)] {
        guard is64, let dynsym = section(named: ".dynsym"), let versym = section(named: ".gnu.version"),
            let dynstr = section(named: ".dynstr")
        else { return [] }
        // Version index → (name, library), from the vernaux entries' vna_other.
        let dyn = dynamicEntries
        var names: [UInt16: (String, String)] = [:]
        if let strtab = dyn.first(where: { $0.tag == Self.DT_STRTAB })?.value,
            let start = dyn.first(where: { $0.tag == Self.DT_VERNEED })?.value,
            let count = dyn.first(where: { $0.tag == Self.DT_VERNEEDNUM })?.value,
            var at = fileOffset(ofVirtualAddress: start)
        {
            for _ in 0..<min(count, 256) {
                guard let b = readBytes(at, 16) else { break }
                let cnt = Int(Self.u16(b, 2, littleEndian)), lib = string(strtab, Self.u32(b, 4, littleEndian)) ?? "?"
                let aux = UInt64(Self.u32(b, 8, littleEndian)), next = UInt64(Self.u32(b, 12, littleEndian))
                var a = at + aux
                for _ in 0..<min(cnt, 256) {
                    guard aux > 0, let v = readBytes(a, 16) else { break }
                    if let name = string(strtab, Self.u32(v, 8, littleEndian)) { names[Self.u16(v, 6, littleEndian)] = (name, lib) }
                    let n = UInt64(Self.u32(v, 12, littleEndian))
                    if n == 0 { break }
                    a += n
                }
                if next == 0 { break }
                at += next
            }
        }
        let count = Int(min(dynsym.size / 24, 1 << 20))
        guard count > 0, versym.size >= UInt64(count * 2), let syms = readBytes(dynsym.offset, count * 24),
            let vers = readBytes(versym.offset, count * 2)
        else { return [] }
        var out: [(symbol: String, version: String, library: String)] = []
        for i in 1..<count {
            let shndx = Self.u16(syms, i * 24 + 6, littleEndian)
            guard shndx == 0 else { continue }  // defined here: not a need
            let index = Self.u16(vers, i * 2, littleEndian) & 0x7fff
            guard let (version, library) = names[index] else { continue }
            let name = readCString(dynstr.offset &+ UInt64(Self.u32(syms, i * 24, littleEndian)), limit: 1024) ?? "?"
            out.append((name, version, library))
        }
        return out
    }

    /// Versions this file defines (a libc.so.6 defines `GLIBC_2.2.5` … `GLIBC_2.36`).
    var versionsDefined: [String] {
        let dyn = dynamicEntries
        guard let strtab = dyn.first(where: { $0.tag == Self.DT_STRTAB })?.value,
            let start = dyn.first(where: { $0.tag == Self.DT_VERDEF })?.value,
            let count = dyn.first(where: { $0.tag == Self.DT_VERDEFNUM })?.value,
            var at = fileOffset(ofVirtualAddress: start)
        else { return [] }
        var out: [String] = []
        for _ in 0..<min(count, 1024) {
            guard let b = readBytes(at, 20) else { break }
            let aux = UInt64(Self.u32(b, 12, littleEndian)), next = UInt64(Self.u32(b, 16, littleEndian))
            if aux > 0, let v = readBytes(at + aux, 8), let name = string(strtab, Self.u32(v, 0, littleEndian)) {
                out.append(name)
            }
            if next == 0 { break }
            at += next
        }
        return out
    }

    fileprivate func string(_ strtab: UInt64, _ offset: UInt32) -> String? {
        guard let o = fileOffset(ofVirtualAddress: strtab &+ UInt64(offset)) else { return nil }
        return readCString(o, limit: 256)
    }

    /// Opens `path` and reads its ELF headers; nil when it cannot be opened or is not ELF.
    static func withFile<T>(_ path: String, _ body: (ELFFile) -> T) -> T? {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return nil }
        guard let elf = try? ELFFile(fd: fd) else { return nil }
        return body(elf)
    }
}

/// `GLIBC_2.34` → (2, 34); ordering helpers for dotted versions.
enum DottedVersion {
    static func parse(_ text: String) -> [Int]? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false).map { Int($0) }
        guard !parts.isEmpty, parts.allSatisfy({ $0 != nil }) else { return nil }
        return parts.map { $0! }
    }

    static func less(_ a: [Int], _ b: [Int]) -> Bool {
        for i in 0..<max(a.count, b.count) {
            let x = i < a.count ? a[i] : 0, y = i < b.count ? b[i] : 0
            if x != y { return x < y }
        }
        return false
    }

    /// The highest `GLIBC_x.y` among `names` (other version names ignored).
    static func highestGLIBC(_ names: [String]) -> (name: String, version: [Int])? {
        var best: (String, [Int])?
        for n in names where n.hasPrefix("GLIBC_") {
            guard let v = parse(String(n.dropFirst(6))) else { continue }
            if best == nil || less(best!.1, v) { best = (n, v) }
        }
        return best
    }
}
