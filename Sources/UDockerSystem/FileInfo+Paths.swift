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
    public static func contents(of path: String, contain needle: String) -> Bool {
        guard let bytes = AtomicFile.read(path) else { return false }
        let pattern = Array(needle.utf8)
        return bytes.withUnsafeBytes { $0.firstRange(of: pattern) != nil }
    }
}
