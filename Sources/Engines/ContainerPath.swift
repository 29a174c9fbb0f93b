import Foundation
import System
#if canImport(Glibc)
import Glibc
#endif

/// Lexical helpers for container paths.
enum PathName {
    /// Splits into components, dropping empty ones and ".".
    static func components(_ path: String) -> [String] {
        path.split(separator: "/", omittingEmptySubsequences: true).map(String.init).filter { $0 != "." }
    }

    /// Absolute, "." and ".." removed lexically (".." never goes above "/"), no trailing slash.
    static func normalize(_ path: String) -> String {
        var out: [String] = []
        for c in components(path) {
            if c == ".." { if !out.isEmpty { out.removeLast() } } else { out.append(c) }
        }
        return "/" + out.joined(separator: "/")
    }

    /// Component-wise prefix test: `/a/b` is under `/a` but not under `/a/b2` or `/ab`.
    static func isUnder(_ path: String, _ prefix: String) -> Bool {
        let p = components(path), q = components(prefix)
        return p.count >= q.count && Array(p.prefix(q.count)) == q
    }

    static func basename(_ path: String) -> String { components(path).last ?? "/" }
}

/// Host-side view of a container root: resolves container paths the way the kernel would inside
/// the container (symlinks are followed *within* the root and never out of it) and creates or
/// opens files beneath it without following symlinks (every component opened with O_NOFOLLOW).
struct ContainerRoot: Sendable {
    /// Absolute host path of ROOT, no trailing slash.
    let root: String

    init(_ root: String) {
        var r = root
        while r.count > 1 && r.hasSuffix("/") { r.removeLast() }
        self.root = r
    }

    struct Resolved: Sendable, Equatable {
        /// Canonical container path (symlinks resolved inside the root).
        var path: String
        /// Where it is on the host (beneath the root, or inside a volume's host directory).
        var hostPath: String
        var exists: Bool
        var isDirectory: Bool
        var isRegularFile: Bool
        var mode: mode_t
        /// The path lies inside a volume (host directory bound into the container).
        var inVolume: Bool
    }

    enum ResolveError: Error, Equatable { case loop, notDirectory(String) }

    /// A volume as the resolver sees it: container path → host path.
    struct Binding: Sendable { var host: String; var container: String }

    /// Resolves `path` (absolute container path; relative ones are taken from "/").
    /// - followFinal: follow a symlink in the last component.
    /// - volumes: once a prefix equals a volume's container path, the rest is looked up in its
    ///   host directory (the last matching volume wins, as the last mount would).
    func resolve(_ path: String, followFinal: Bool = true, volumes: [Binding] = []) throws -> Resolved {
        var parts: [String] = []
        var pending = Array(PathName.components(path).reversed())
        var links = 0
        var missing = false
        while let c = pending.popLast() {
            if c == ".." { if !parts.isEmpty { parts.removeLast() }; continue }
            parts.append(c)
            let cpath = "/" + parts.joined(separator: "/")
            if let v = volumes.last(where: { PathName.normalize($0.container) == cpath }) {
                let rest = Array(pending.reversed())
                let host = rest.isEmpty ? v.host : v.host + "/" + rest.joined(separator: "/")
                let full = PathName.normalize(cpath + "/" + rest.joined(separator: "/"))
                var st = stat()
                let ok = stat(host, &st) == 0
                return Resolved(path: full, hostPath: host, exists: ok, isDirectory: ok && (st.st_mode & S_IFMT) == S_IFDIR,
                                isRegularFile: ok && (st.st_mode & S_IFMT) == S_IFREG, mode: ok ? st.st_mode : 0, inVolume: true)
            }
            // Below a missing component the rest is taken literally (a volume may still match).
            if missing { continue }
            let host = root + cpath
            var st = stat()
            if lstat(host, &st) != 0 { missing = true; continue }
            let type = st.st_mode & S_IFMT
            if type == S_IFLNK && (!pending.isEmpty || followFinal) {
                links += 1
                if links > 40 { throw ResolveError.loop }
                guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: host) else {
                    throw ResolveError.loop
                }
                parts.removeLast()
                if target.hasPrefix("/") { parts.removeAll() }
                pending.append(contentsOf: PathName.components(target).reversed())
                continue
            }
            if !pending.isEmpty && type != S_IFDIR { throw ResolveError.notDirectory(cpath) }
            if pending.isEmpty {
                return Resolved(path: cpath, hostPath: host, exists: true, isDirectory: type == S_IFDIR,
                                isRegularFile: type == S_IFREG, mode: st.st_mode, inVolume: false)
            }
        }
        if missing {
            let full = "/" + parts.joined(separator: "/")
            return Resolved(path: full, hostPath: root + full, exists: false, isDirectory: false,
                            isRegularFile: false, mode: 0, inVolume: false)
        }
        var st = stat()
        let ok = lstat(root, &st) == 0
        return Resolved(path: "/", hostPath: root, exists: ok, isDirectory: ok && (st.st_mode & S_IFMT) == S_IFDIR,
                        isRegularFile: false, mode: ok ? st.st_mode : 0, inVolume: false)
    }

    // MARK: no-follow operations on canonical paths

    /// Opens the directory `components` beneath the root, every component with O_NOFOLLOW,
    /// creating missing directories (mode 0755) when `create` is set. Returns an fd (O_CLOEXEC).
    private func openDirectory(_ components: [String], create: Bool) throws -> Int32 {
        var fd = try syscall("open", path: root) { open(root, O_DIRECTORY | O_RDONLY | O_CLOEXEC) }
        var walked = root
        for c in components {
            if c == ".." || c == "." { close(fd); throw SystemError("open", path: walked + "/" + c, errno: EINVAL) }
            walked += "/" + c
            var next = openat(fd, c, O_DIRECTORY | O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
            if next < 0 && errno == ENOENT && create {
                if mkdirat(fd, c, 0o755) != 0 && errno != EEXIST {
                    let e = errno; close(fd); throw SystemError("mkdir", path: walked, errno: e)
                }
                next = openat(fd, c, O_DIRECTORY | O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
            }
            let e = errno
            close(fd)
            // ELOOP/ENOTDIR here: a symlink appeared since resolution; refuse it.
            if next < 0 { throw SystemError("open", path: walked, errno: e) }
            fd = next
        }
        return fd
    }

    /// Creates a mountpoint (directory, or empty file) at a canonical container path, with its
    /// parents, never following a symlink. An existing entry of the right type is fine.
    func makeMountpoint(_ path: String, directory: Bool) throws {
        let comps = PathName.components(path)
        guard let last = comps.last else { return }
        let dirfd = try openDirectory(Array(comps.dropLast()), create: true)
        defer { close(dirfd) }
        var st = stat()
        if fstatat(dirfd, last, &st, AT_SYMLINK_NOFOLLOW) == 0 {
            let isDir = (st.st_mode & S_IFMT) == S_IFDIR
            if (st.st_mode & S_IFMT) == S_IFLNK { throw SystemError("create mountpoint", path: root + path, errno: ELOOP) }
            if isDir != directory { throw SystemError("create mountpoint", path: root + path, errno: isDir ? EISDIR : ENOTDIR) }
            return
        }
        if directory {
            if mkdirat(dirfd, last, 0o755) != 0 && errno != EEXIST { throw SystemError("mkdir", path: root + path) }
        } else {
            let fd = openat(dirfd, last, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
            if fd < 0 && errno != EEXIST { throw SystemError("create", path: root + path) }
            if fd >= 0 { close(fd) }
        }
    }

    /// Reads a regular file at a canonical container path (no symlink followed), up to `limit` bytes.
    func readFile(_ path: String, limit: Int = 16 << 20) throws -> Data {
        let comps = PathName.components(path)
        guard let last = comps.last else { throw SystemError("read", path: root, errno: EISDIR) }
        let dirfd = try openDirectory(Array(comps.dropLast()), create: false)
        defer { close(dirfd) }
        let fd = openat(dirfd, last, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)
        if fd < 0 { throw SystemError("open", path: root + path) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
            throw SystemError("read", path: root + path, errno: EINVAL)
        }
        var data = Data()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while data.count < limit {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 { if errno == EINTR { continue }; throw SystemError("read", path: root + path) }
            if n == 0 { break }
            data.append(contentsOf: buffer[0..<n])
        }
        return data
    }

    /// Reads a file named by container path: resolves symlinks in-root, then reads without
    /// following any. nil when it does not exist or is not a regular file.
    func readContainerFile(_ path: String) -> Data? {
        guard let r = try? resolve(path), r.exists, r.isRegularFile, !r.inVolume else { return nil }
        return try? readFile(r.path)
    }
}
