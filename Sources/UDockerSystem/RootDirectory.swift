import CLinux
import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif

/// A container root directory. Every lookup goes through `RootResolver`: symlinks (absolute or
/// relative) are resolved inside the root like `chroot` would, `..` stops at the root, and nothing
/// is ever followed out of it. Host paths returned are canonical (symlink-free below the root).
public final class RootDirectory: @unchecked Sendable {
    /// The root as given (trailing slashes removed).
    public let path: String
    /// O_PATH|O_DIRECTORY fd on the root (owned).
    public let fd: Int32

    public init(path: String) throws {
        var p = path
        while p.count > 1 && p.hasSuffix("/") { p.removeLast() }
        let fd = open(p, CL_O_PATH | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw SystemError("open", path: p) }
        self.path = p
        self.fd = fd
    }

    deinit { close(fd) }

    /// A fresh resolver (with its own fd cache) for a batch of operations on this root.
    public func makeResolver() throws -> RootResolver { try RootResolver(root: self) }

    /// The host path of `containerPath` resolved inside the root; nil if it (or a parent) is missing.
    /// With `followFinal` false a final symlink is returned itself (it is not followed).
    public func hostPath(_ containerPath: String, followFinal: Bool = true) -> String? {
        guard let r = try? makeResolver() else { return nil }
        defer { r.close() }
        guard let res = try? r.resolve(path: Array(containerPath.utf8), followFinal: followFinal) else { return nil }
        switch res {
        case .directory(_, let p):
            return host(p)
        case .entry(let pfd, let pp, let name):
            var st = stat()
            guard withCName(name, { fstatat(pfd, $0, &st, AT_SYMLINK_NOFOLLOW) }) == 0 else { return nil }
            return host(RootResolver.join(pp, name))
        case .missing:
            return nil
        }
    }

    public func isDirectory(_ containerPath: String) -> Bool {
        guard let r = try? makeResolver() else { return false }
        defer { r.close() }
        if case .directory? = try? r.resolve(path: Array(containerPath.utf8)) { return true }
        return false
    }

    /// A regular file with any execute bit, after in-root resolution.
    public func isExecutableFile(_ containerPath: String) -> Bool {
        guard let r = try? makeResolver() else { return false }
        defer { r.close() }
        guard case .entry(let pfd, _, let name)? = try? r.resolve(path: Array(containerPath.utf8)) else { return false }
        var st = stat()
        guard withCName(name, { fstatat(pfd, $0, &st, AT_SYMLINK_NOFOLLOW) }) == 0 else { return false }
        return st.st_mode & 0o170000 == 0o100000 && st.st_mode & 0o111 != 0
    }

    /// Reads a file inside the root (symlinks resolved in root); one of more than `limit`
    /// bytes is refused (EFBIG) without being read.
    public func readFile(_ containerPath: String, limit: Int = .max) throws -> [UInt8] {
        let r = try makeResolver()
        defer { r.close() }
        let shown = containerPath
        guard let res = try r.resolve(path: Array(containerPath.utf8)) else {
            throw SystemError("open", path: shown, errno: ENOENT)
        }
        switch res {
        case .directory:
            throw SystemError("read", path: shown, errno: EISDIR)
        case .missing:
            throw SystemError("open", path: shown, errno: ENOENT)
        case .entry(let pfd, _, let name):
            let fd = withCName(name) { openat(pfd, $0, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK) }
            guard fd >= 0 else { throw SystemError("open", path: shown) }
            defer { close(fd) }
            var st = stat()
            guard fstat(fd, &st) == 0 else { throw SystemError("stat", path: shown) }
            guard st.st_mode & 0o170000 == 0o100000 else { throw SystemError("read", path: shown, errno: EINVAL) }
            guard st.st_size <= limit else { throw SystemError("read", path: shown, errno: EFBIG) }
            var out: [UInt8] = []
            out.reserveCapacity(Int(max(st.st_size, 0)))
            var buf = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if n < 0 {
                    if errno == EINTR { continue }
                    throw SystemError("read", path: shown)
                }
                if n == 0 { break }
                guard out.count + n <= limit else { throw SystemError("read", path: shown, errno: EFBIG) }
                out.append(contentsOf: buf[0..<n])
            }
            return out
        }
    }

    /// `mkdir -p` beneath the root (through in-root symlinks; blocking non-directories are
    /// replaced). New directories get exactly `mode`. Returns the canonical host path.
    @discardableResult
    public func makeDirectories(_ containerPath: String, mode: UInt32 = 0o755) throws -> String {
        let r = try makeResolver()
        defer { r.close() }
        guard case .directory(_, let p)? = try r.resolve(path: Array(containerPath.utf8), create: true, mode: mode_t(mode)) else {
            throw SystemError("mkdir", path: containerPath, errno: ENOTDIR)
        }
        return host(p)
    }

    /// Creates an empty file to serve as a mount point (parents created). An existing entry is
    /// left alone; if it is a symlink, its in-root target is used (created when dangling). Returns
    /// the canonical host path, which contains no symlink below the root.
    @discardableResult
    public func makeEmptyFile(_ containerPath: String, mode: UInt32 = 0o644) throws -> String {
        let r = try makeResolver()
        defer { r.close() }
        return try makeEmptyFile(
            r, RootResolver.components(Array(containerPath.utf8)), mode: mode,
            shown: containerPath, depth: 0)
    }

    private func makeEmptyFile(_ r: RootResolver, _ components: [[UInt8]], mode: UInt32, shown: String, depth: Int) throws -> String {
        var comps = components
        guard depth < 40 else { throw SystemError("create", path: shown, errno: ELOOP) }
        guard let name = comps.popLast(), name != [0x2E, 0x2E] else {
            throw SystemError("create", path: shown, errno: EINVAL)
        }
        guard let (dfd, dpath) = try r.directory(comps, create: true) else {
            throw SystemError("mkdir", path: shown, errno: ENOTDIR)
        }
        if try createFile(in: dfd, name: name, mode: mode) != nil {
            return host(RootResolver.join(dpath, name))  // created, or an existing non-symlink
        }
        // A symlink: its target, taken inside the root (relative to the link's real directory),
        // gets the same treatment (parents created, existing entries left alone).
        guard let target = r.readLink(in: dfd, name: name) else {
            throw SystemError("readlink", path: shown, errno: EINVAL)
        }
        let base = target.first == 0x2F ? [] : RootResolver.components(dpath)
        return try makeEmptyFile(r, base + RootResolver.components(target), mode: mode, shown: shown, depth: depth + 1)
    }

    /// true: created; false: a non-symlink entry already exists; nil: a symlink is there.
    private func createFile(in dfd: Int32, name: [UInt8], mode: UInt32) throws -> Bool? {
        let m = mode_t(mode & 0o777)
        let fd = withCName(name) { openat(dfd, $0, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, m) }
        if fd >= 0 {
            fchmod(fd, m)
            close(fd)
            return true
        }
        guard errno == EEXIST else { throw SystemError("create", path: String(decoding: name, as: UTF8.self)) }
        var st = stat()
        guard withCName(name, { fstatat(dfd, $0, &st, AT_SYMLINK_NOFOLLOW) }) == 0 else {
            throw SystemError("stat", path: String(decoding: name, as: UTF8.self))
        }
        return st.st_mode & 0o170000 == 0o120000 ? nil : false
    }

    private func host(_ canonical: [UInt8]) -> String {
        if canonical.isEmpty { return path }
        let base = path == "/" ? "" : path
        return base + "/" + String(decoding: canonical, as: UTF8.self)
    }
}
