import FoundationEssentials
import UDockerSystem
#if canImport(Glibc)
import Glibc
#endif

/// A parsed `ld.so.cache` (glibc's new format, `glibc-ld.so.cache1.1`, alone or after the old
/// `ld.so-1.7.0` table). Read with our own code so that a cache under another root (the
/// `UDOCKER_NVIDIA_ROOT` tree, a container) is read as data and no `ldconfig -p` runs.
public struct LDCache: Sendable, Equatable {
    public struct Entry: Sendable, Equatable {
        /// The soname (`libcuda.so.1`).
        public var name: String
        /// The absolute path ldconfig recorded (`/usr/lib/x86_64-linux-gnu/libcuda.so.1`).
        public var path: String
        /// `FLAG_*` bits: low byte the type (3 = ELF libc6), next byte the ABI (0x03 = x86-64).
        public var flags: Int32
    }

    public var entries: [Entry]

    static let newMagic = Array("glibc-ld.so.cache1.1".utf8)
    static let oldMagic = Array("ld.so-1.7.0".utf8)
    /// The ABI byte for this machine's native libraries (`FLAG_X8664_LIB64`, `FLAG_AARCH64_LIB64`).
    public static var nativeABI: Int32? {
        #if arch(x86_64)
        return 0x0300
        #elseif arch(arm64)
        return 0x0a00
        #else
        return nil
        #endif
    }

    public enum ParseError: Error, Equatable, CustomStringConvertible {
        case notACache, truncated
        public var description: String {
            self == .notACache ? "not a glibc ld.so.cache (no glibc-ld.so.cache1.1 header)" : "truncated ld.so.cache"
        }
    }

    /// Parses the bytes of a cache file. Every offset is bounds-checked.
    public init(bytes: [UInt8]) throws {
        var start = 0
        if bytes.starts(with: Self.oldMagic) {
            // Old table: magic (12 bytes with padding), nlibs, then 12-byte entries; the new
            // header follows, aligned to 8.
            guard bytes.count >= 16 else { throw ParseError.truncated }
            let n = Int(ELFFile.u32(bytes, 12, true))
            guard n < 1 << 24 else { throw ParseError.truncated }
            start = (16 + n * 12 + 7) & ~7
        }
        guard bytes.count >= start + 48, Array(bytes[start..<start + 20]) == Self.newMagic else {
            throw ParseError.notACache
        }
        let le = true
        let count = Int(ELFFile.u32(bytes, start + 20, le))
        guard count < 1 << 24, start + 48 + count * 24 <= bytes.count else { throw ParseError.truncated }
        func string(_ offset: UInt32) -> String? {
            let o = start + Int(offset)
            guard o >= start, o < bytes.count, let end = bytes[o...].firstIndex(of: 0) else { return nil }
            return String(decoding: bytes[o..<end], as: UTF8.self)
        }
        var list: [Entry] = []
        for i in 0..<count {
            let e = start + 48 + i * 24
            let flags = Int32(bitPattern: ELFFile.u32(bytes, e, le))
            guard let key = string(ELFFile.u32(bytes, e + 4, le)), let value = string(ELFFile.u32(bytes, e + 8, le)),
                !key.isEmpty, !key.contains("/"), value.hasPrefix("/")
            else { continue }
            list.append(Entry(name: key, path: value, flags: flags))
        }
        entries = list
    }

    /// Reads `etc/ld.so.cache` beneath `root` (resolved in-root).
    public static func load(root: String, path: String = "/etc/ld.so.cache") throws -> LDCache {
        guard let data = (try? RootDirectory(path: root))?.contents(path) else {
            throw SystemError("read", path: PathName.normalize(root + "/" + path), errno: ENOENT)
        }
        return try LDCache(bytes: [UInt8](data))
    }

    /// Entries for this machine's native ABI (i386 and other compat entries skipped).
    public var native: [Entry] {
        guard let abi = Self.nativeABI else { return entries.filter { $0.flags & 0xff == 3 } }
        return entries.filter { $0.flags & 0xff == 3 && $0.flags & 0xff00 == abi }
    }

    /// The first native entry named `name` (ldconfig sorts them by preference).
    public func lookup(_ name: String) -> Entry? { native.first { $0.name == name } }
}
