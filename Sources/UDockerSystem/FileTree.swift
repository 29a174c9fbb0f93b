import CLinux
import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif

/// Recursive removal and directory listing on directory file descriptors. Nothing here follows a
/// symbolic link: links are removed, never their targets.
public enum FileTree {
    /// `rm -rf` that never follows symlinks. Directories that are not readable, writable or
    /// searchable by the owner get `u+rwx` first, so a container holding `000` directories can be
    /// removed. A missing path is not an error. Uses openat/unlinkat on directory fds.
    public static func remove(_ path: String) throws {
        var p = path
        while p.count > 1 && p.hasSuffix("/") { p.removeLast() }
        guard !p.isEmpty, p != "/" else { throw SystemError("remove", path: path, errno: EINVAL) }
        let parent: String
        let name: String
        if let slash = p.lastIndex(of: "/") {
            parent = slash == p.startIndex ? "/" : String(p[..<slash])
            name = String(p[p.index(after: slash)...])
        } else {
            parent = "."
            name = p
        }
        guard name != ".", name != ".." else { throw SystemError("remove", path: path, errno: EINVAL) }
        let dfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd < 0 {
            if errno == ENOENT { return }
            throw SystemError("open", path: parent)
        }
        defer { close(dfd) }
        try removeEntry(in: dfd, name: Array(name.utf8), displayPath: path)
    }

    /// Removes `name` inside the directory `dirFD` (recursively when it is a directory, never
    /// following a symlink). Returns false when there was nothing to remove.
    @discardableResult
    public static func removeEntry(in dirFD: Int32, name: [UInt8], displayPath: String? = nil) throws -> Bool {
        var fixedParent = false
        while true {
            let r = withCName(name) { unlinkat(dirFD, $0, 0) }
            if r == 0 { return true }
            let e = errno
            switch e {
            case EINTR: continue
            case ENOENT: return false
            case EISDIR:
                try removeDirectory(in: dirFD, name: name, displayPath: displayPath)
                return true
            case EACCES where !fixedParent, EPERM where !fixedParent:
                // Unwritable parent (mode 0500 and the like): give the owner rwx and retry.
                fixedParent = true
                if !ensureOwnerRWX(fd: dirFD) { throw SystemError("unlink", path: display(name, displayPath), errno: e) }
            default:
                throw SystemError("unlink", path: display(name, displayPath), errno: e)
            }
        }
    }

    /// Removes every entry of the directory `dirFD` for which `keep` returns false.
    public static func removeChildren(of dirFD: Int32, keep: ([UInt8]) -> Bool = { _ in false }) throws {
        for entry in try list(dirFD) where !keep(entry.name) {
            try removeEntry(in: dirFD, name: entry.name)
        }
    }

    /// One directory entry: raw name bytes (no NUL) and d_type (DT_UNKNOWN on some filesystems).
    public struct Entry {
        public let name: [UInt8]
        public let type: UInt8
        public var isDirectory: Bool { type == UInt8(DT_DIR) }
        public var isKnown: Bool { type != UInt8(DT_UNKNOWN) }
    }

    /// Lists a directory (without `.` and `..`). `dirFD` must be opened for reading (not O_PATH);
    /// its offset is not disturbed (a separate open file description is used).
    public static func list(_ dirFD: Int32) throws -> [Entry] {
        let fd = openat(dirFD, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw SystemError("open directory") }
        guard let dir = fdopendir(fd) else {
            let e = errno
            close(fd)
            throw SystemError("fdopendir", errno: e)
        }
        defer { closedir(dir) }
        var out: [Entry] = []
        while true {
            errno = 0
            guard let ent = readdir(dir) else {
                if errno != 0 { throw SystemError("readdir") }
                break
            }
            let cname = cl_dirent_name(ent)!
            let len = strlen(cname)
            let bytes = [UInt8](UnsafeRawBufferPointer(start: cname, count: len))
            if bytes == [0x2E] || bytes == [0x2E, 0x2E] { continue }
            out.append(Entry(name: bytes, type: cl_dirent_type(ent)))
        }
        return out
    }

    // MARK: - internals

    private static func removeDirectory(in dirFD: Int32, name: [UInt8], displayPath: String?) throws {
        let fd = try openDirectoryFixingPermissions(in: dirFD, name: name, displayPath: displayPath)
        do {
            _ = ensureOwnerRWX(fd: fd)
            for entry in try list(fd) {
                if entry.isDirectory {
                    try removeDirectory(in: fd, name: entry.name, displayPath: nil)
                } else {
                    try removeEntry(in: fd, name: entry.name)
                }
            }
        } catch {
            close(fd)
            throw error
        }
        close(fd)
        while true {
            let r = withCName(name) { unlinkat(dirFD, $0, AT_REMOVEDIR) }
            if r == 0 || errno == ENOENT { return }
            if errno == EINTR { continue }
            throw SystemError("rmdir", path: display(name, displayPath))
        }
    }

    /// Opens a child directory for reading without following symlinks; on EACCES gives it u+rwx.
    static func openDirectoryFixingPermissions(in dirFD: Int32, name: [UInt8], displayPath: String?) throws -> Int32 {
        var fixed = false
        while true {
            let fd = withCName(name) { openat(dirFD, $0, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) }
            if fd >= 0 { return fd }
            let e = errno
            if e == EINTR { continue }
            if (e == EACCES || e == EPERM) && !fixed {
                fixed = true
                _ = ensureOwnerRWX(fd: dirFD)
                var st = stat()
                if withCName(name, { fstatat(dirFD, $0, &st, AT_SYMLINK_NOFOLLOW) }) == 0 {
                    _ = withCName(name) { cl_fchmodat_nofollow(dirFD, $0, (st.st_mode & 0o7777) | 0o700) }
                }
                continue
            }
            throw SystemError("open", path: display(name, displayPath), errno: e)
        }
    }

    /// Adds u+rwx to an open directory (not O_PATH) if it lacks any of them. Returns false if it
    /// already had them or the chmod failed.
    @discardableResult
    public static func ensureOwnerRWX(fd: Int32) -> Bool {
        var st = stat()
        guard fstat(fd, &st) == 0 else { return false }
        if st.st_mode & 0o700 == 0o700 { return false }
        return fchmod(fd, (st.st_mode & 0o7777) | 0o700) == 0
    }

    private static func display(_ name: [UInt8], _ path: String?) -> String {
        path ?? String(decoding: name, as: UTF8.self)
    }
}

/// Calls `body` with `bytes` as a NUL-terminated C string (stack-allocated; no String round trip,
/// so non-UTF-8 names stay byte-exact).
@inline(__always)
public func withCName<R>(_ bytes: [UInt8], _ body: (UnsafePointer<CChar>) throws -> R) rethrows -> R {
    try withUnsafeTemporaryAllocation(of: CChar.self, capacity: bytes.count + 1) { buf in
        bytes.withUnsafeBytes { src in
            if !src.isEmpty { UnsafeMutableRawPointer(buf.baseAddress!).copyMemory(from: src.baseAddress!, byteCount: src.count) }
        }
        buf[bytes.count] = 0
        return try body(UnsafePointer(buf.baseAddress!))
    }
}
