import CLinux
import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif

/// What the launch side needs from the resolver: a lookup that continues into a volume's host
/// directory when the path goes through a bound volume, and mountpoint creation that refuses
/// every symlink. Both walk directory fds (`openat(O_NOFOLLOW)`, `readlinkat`, `fstatat`) like
/// `RootResolver`; symlinks are resolved inside the root and never followed out of it.
extension RootDirectory {
    /// A volume as the lookup sees it: container path → host directory or file.
    public struct Volume: Sendable {
        public var host: String
        public var container: String
        public init(host: String, container: String) { self.host = host; self.container = container }
    }

    public struct Resolved: Sendable, Equatable {
        /// Canonical container path (symlinks resolved inside the root).
        public var path: String
        /// Where it is on the host (beneath the root, or inside a volume's host directory).
        public var hostPath: String
        public var exists: Bool
        public var isDirectory: Bool
        public var isRegularFile: Bool
        public var mode: mode_t
        /// The path lies inside a volume (a host directory bound into the container).
        public var inVolume: Bool
    }

    public enum ResolveError: Error, Equatable { case loop, notDirectory(String) }

    /// Resolves `path` (absolute container path; relative ones are taken from "/").
    /// - followFinal: follow a symlink in the last component.
    /// - volumes: once a prefix equals a volume's container path, the rest is looked up in its
    ///   host directory (the last matching volume wins, as the last mount would).
    /// Below a missing component the rest is taken literally (a volume may still match).
    public func resolve(_ containerPath: String, followFinal: Bool = true, volumes: [Volume] = []) throws -> Resolved {
        let r = try makeResolver()
        defer { r.close() }
        var parts: [String] = []
        var pending = Array(PathName.components(containerPath).reversed())
        var links = 0
        var missing = false
        while let c = pending.popLast() {
            if c == ".." { if !parts.isEmpty { parts.removeLast() }; continue }
            let parent = Array(PathName.join(parts).utf8)
            parts.append(c)
            let cpath = "/" + PathName.join(parts)
            if let v = volumes.last(where: { PathName.normalize($0.container) == cpath }) {
                let rest = Array(pending.reversed())
                let host = rest.isEmpty ? v.host : v.host + "/" + PathName.join(rest)
                let full = PathName.normalize(cpath + "/" + PathName.join(rest))
                var st = stat()
                let ok = stat(host, &st) == 0
                return Resolved(
                    path: full, hostPath: host, exists: ok, isDirectory: ok && (st.st_mode & S_IFMT) == S_IFDIR,
                    isRegularFile: ok && (st.st_mode & S_IFMT) == S_IFREG, mode: ok ? st.st_mode : 0, inVolume: true)
            }
            if missing { continue }
            // `parts` before `c` is canonical and made of directories: re-opened with O_NOFOLLOW.
            let dirFD = try r.directoryFD(canonical: parent)
            var st = stat()
            if withCName(Array(c.utf8), { fstatat(dirFD, $0, &st, AT_SYMLINK_NOFOLLOW) }) != 0 {
                missing = true  // as lstat would: whatever the reason, it is not there for us
                continue
            }
            let type = st.st_mode & S_IFMT
            if type == S_IFLNK && (!pending.isEmpty || followFinal) {
                links += 1
                guard links <= 40, let target = r.readLink(in: dirFD, name: Array(c.utf8)) else { throw ResolveError.loop }
                parts.removeLast()
                if target.first == 0x2F { parts.removeAll() }
                pending.append(contentsOf: PathName.components(String(decoding: target, as: UTF8.self)).reversed())
                continue
            }
            if !pending.isEmpty && type != S_IFDIR { throw ResolveError.notDirectory(cpath) }
            if pending.isEmpty {
                return Resolved(
                    path: cpath, hostPath: hostPath(ofCanonical: cpath), exists: true, isDirectory: type == S_IFDIR,
                    isRegularFile: type == S_IFREG, mode: st.st_mode, inVolume: false)
            }
        }
        let full = "/" + PathName.join(parts)
        if missing {
            return Resolved(
                path: full, hostPath: hostPath(ofCanonical: full), exists: false, isDirectory: false,
                isRegularFile: false, mode: 0, inVolume: false)
        }
        var st = stat()
        let ok = fstat(r.rootFD, &st) == 0
        return Resolved(
            path: "/", hostPath: self.path, exists: ok, isDirectory: ok && (st.st_mode & S_IFMT) == S_IFDIR,
            isRegularFile: false, mode: ok ? st.st_mode : 0, inVolume: false)
    }

    /// Creates a mountpoint (directory, or empty file) at a canonical container path, with its
    /// parents (mode 0755), refusing any symlink or `..` on the way (ELOOP/ENOTDIR/EINVAL) and
    /// never replacing anything. An existing entry of the right type is fine.
    public func makeMountpoint(_ path: String, directory: Bool) throws {
        let comps = PathName.components(path)
        guard let last = comps.last else { return }
        let shown = hostPath(ofCanonical: path)
        var dirFD = try syscall("open", path: self.path) { openat(fd, ".", O_DIRECTORY | O_RDONLY | O_CLOEXEC) }
        defer { close(dirFD) }
        for c in comps.dropLast() + (directory ? [last] : []) {
            if c == ".." { throw SystemError("create mountpoint", path: shown, errno: EINVAL) }
            var next = openat(dirFD, c, O_DIRECTORY | O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
            if next < 0 && errno == ENOENT {
                if mkdirat(dirFD, c, 0o755) != 0 && errno != EEXIST { throw SystemError("mkdir", path: shown) }
                next = openat(dirFD, c, O_DIRECTORY | O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
            }
            // ELOOP/ENOTDIR: a symlink or a non-directory is in the way; refused.
            if next < 0 { throw SystemError("create mountpoint", path: shown) }
            close(dirFD)
            dirFD = next
        }
        if directory { return }
        if last == ".." { throw SystemError("create mountpoint", path: shown, errno: EINVAL) }
        var st = stat()
        if fstatat(dirFD, last, &st, AT_SYMLINK_NOFOLLOW) == 0 {
            let type = st.st_mode & S_IFMT
            if type == S_IFLNK { throw SystemError("create mountpoint", path: shown, errno: ELOOP) }
            if type == S_IFDIR { throw SystemError("create mountpoint", path: shown, errno: EISDIR) }
            return
        }
        let f = openat(dirFD, last, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
        if f < 0 && errno != EEXIST { throw SystemError("create", path: shown) }
        if f >= 0 { close(f) }
    }

    /// The contents of a regular file named by container path (symlinks resolved in root); nil
    /// when it is missing, not a regular file or unreadable.
    public func contents(_ containerPath: String) -> Data? {
        (try? readFile(containerPath)).map { Data($0) }
    }

    /// A regular file's text, resolved inside the root; nil if it is missing, not a file or not
    /// UTF-8. (Through `Data` it cost a run a generic conversion resolved at run time.)
    public func text(_ containerPath: String) -> String? {
        (try? readFile(containerPath)).flatMap { String(validating: $0, as: UTF8.self) }
    }

    /// Host path of a canonical container path.
    public func hostPath(ofCanonical containerPath: String) -> String {
        let base = path == "/" ? "" : path
        let p = PathName.normalize(containerPath)
        return p == "/" ? path : base + p
    }
}
