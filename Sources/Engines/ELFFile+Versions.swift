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

    private func string(_ strtab: UInt64, _ offset: UInt32) -> String? {
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
