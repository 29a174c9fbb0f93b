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

    /// The largest cache read: real ones are a few hundred KiB (a big HPC host, 2 MiB); the
    /// container's cache is the image's, so its size is the image author's choice.
    public static let maxSize = 16 << 20
    /// The longest string taken (PATH_MAX); a longer one is skipped.
    static let maxString = 4096

    public enum ParseError: Error, Equatable, CustomStringConvertible {
        case notACache, truncated, tooLarge, malformed
        public var description: String {
            switch self {
            case .notACache: return "not a glibc ld.so.cache (no glibc-ld.so.cache1.1 header)"
            case .truncated: return "truncated ld.so.cache"
            case .tooLarge: return "ld.so.cache larger than \(LDCache.maxSize >> 20) MiB"
            case .malformed: return "malformed ld.so.cache (its entries name more string bytes than the file has)"
            }
        }
    }

    /// Parses the bytes of a cache file in time linear in its size: every offset is
    /// bounds-checked, a string lies in the string table (after the entries) and ends within
    /// `maxString` bytes, each offset is read once, and the bytes scanned for strings may not
    /// exceed four times the file (a real cache needs less than twice: keys are suffixes of
    /// paths) — a cache whose entries all point at one long run without NUL is refused instead
    /// of costing O(size²).
    public init(bytes: [UInt8]) throws {
        guard bytes.count <= Self.maxSize else { throw ParseError.tooLarge }
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
        // Offsets count from the new header; the strings follow the entries (glibc's readers
        // bound them by the end of the file, ldconfig writes them right after the entries).
        let table = start + 48 + count * 24
        var budget = 4 * bytes.count + 4 * Self.maxString
        var seen: [UInt32: String?] = [:]
        func string(_ offset: UInt32) throws -> String? {
            if let known = seen[offset] { return known }
            let o = start + Int(offset)
            var result: String?
            if o >= table, o < bytes.count {
                let limit = min(bytes.count, o + Self.maxString)
                let end: Int = bytes.withUnsafeBytes { (b: UnsafeRawBufferPointer) -> Int in
                    guard let base = b.baseAddress, let nul = memchr(base + o, 0, limit - o) else { return limit }
                    return UnsafeRawPointer(nul) - base
                }
                budget -= end - o + 1
                guard budget >= 0 else { throw ParseError.malformed }
                if end < limit { result = String(decoding: bytes[o..<end], as: UTF8.self) }
            }
            seen[offset] = result
            return result
        }
        var list: [Entry] = []
        for i in 0..<count {
            let e = start + 48 + i * 24
            let flags = Int32(bitPattern: ELFFile.u32(bytes, e, le))
            guard let key = try string(ELFFile.u32(bytes, e + 4, le)), !key.isEmpty, !key.contains("/"),
                let value = try string(ELFFile.u32(bytes, e + 8, le)), value.hasPrefix("/")
            else { continue }
            list.append(Entry(name: key, path: value, flags: flags))
        }
        entries = list
    }

    /// Reads `etc/ld.so.cache` beneath `root` (resolved in-root), at most `maxSize` bytes.
    public static func load(root: String, path: String = "/etc/ld.so.cache") throws -> LDCache {
        let bytes: [UInt8]
        do { bytes = try RootDirectory(path: root).readFile(path, limit: maxSize) } catch let e as SystemError where e.errno == EFBIG {
            throw ParseError.tooLarge
        } catch {
            throw SystemError("read", path: PathName.normalize(root + "/" + path), errno: ENOENT)
        }
        return try LDCache(bytes: bytes)
    }

    /// Entries for this machine's native ABI (i386 and other compat entries skipped).
    public var native: [Entry] {
        guard let abi = Self.nativeABI else { return entries.filter { $0.flags & 0xff == 3 } }
        return entries.filter { $0.flags & 0xff == 3 && $0.flags & 0xff00 == abi }
    }

    /// The first native entry named `name` (ldconfig sorts them by preference).
    public func lookup(_ name: String) -> Entry? { native.first { $0.name == name } }
}
