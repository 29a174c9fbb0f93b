import CLinux
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

extension FileInfo {
    /// `realpath(3)`: absolute, every symlink resolved; nil when the path does not resolve.
    public static func realPath(_ path: String) -> String? {
        guard let p = realpath(path, nil) else { return nil }
        defer { free(p) }
        return String(cString: p)
    }
}

extension FileInfo {
    /// The user's home: `$HOME` when set and not empty, else the password database's entry
    /// (what Foundation's `NSHomeDirectory()` answered).
    public static func homeDirectory() -> String {
        if let h = getenv("HOME"), h.pointee != 0 { return String(cString: h) }
        if let pw = getpwuid(geteuid()), let dir = pw.pointee.pw_dir { return String(cString: dir) }
        return "/"
    }
}

extension FileInfo {
    /// Whether the bytes of `needle` occur in the file at `path` (false when it cannot be read).
    /// `memmem(3)`: the generic `firstRange(of:)` took 58 ms over the 138 KB of libfakechroot.so,
    /// on every F-mode run (and over proot in P modes).
    public static func contents(of path: String, contain needle: String) -> Bool {
        guard let bytes = AtomicFile.read(path) else { return false }
        return contains(bytes, Array(needle.utf8))
    }

    /// Whether `needle` occurs in `haystack` (an empty needle always does).
    public static func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
        guard !needle.isEmpty else { return true }
        return haystack.withUnsafeBytes { h in
            needle.withUnsafeBytes { n in cl_memmem_found(h.baseAddress, h.count, n.baseAddress, n.count) != 0 }
        }
    }
}
