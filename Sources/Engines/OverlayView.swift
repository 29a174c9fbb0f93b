import ContainerModel
import CLinux
import FoundationEssentials
import UDockerSystem
#if canImport(Glibc)
import Glibc
#endif

/// The merged tree of an overlay container, seen from this process: a helper child mounts the
/// overlay in its own user + mount namespaces and keeps it there until `close()`; meanwhile the
/// tree is at `/proc/<pid>/root<ROOT>`. Used to plan a run (users, PATH, mountpoints — created in
/// `upper/`) and to materialise a flat ROOT for the other engines.
public final class OverlayView {
    public let path: String
    private let pid: pid_t
    private var releaseFD: Int32

    public init(root: String, cacheDirectory: String, options: String) throws {
        var error = cl_exec_error_t()
        var fd: Int32 = -1
        let p = cl_overlay_view(cacheDirectory, options, root, &fd, &error)
        guard p > 0 else {
            let step = withUnsafeBytes(of: &error.step) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
            throw EngineError(.io, "overlay: \(step): \(String(cString: strerror(error.error_number)))")
        }
        pid = p
        releaseFD = fd
        path = "/proc/\(p)/root\(root)"
    }

    /// Releases the helper (its namespace and mount go away with it) and reaps it.
    public func close() {
        guard releaseFD >= 0 else { return }
        Glibc.close(releaseFD)
        releaseFD = -1
        var st: Int32 = 0
        while waitpid(pid, &st, 0) < 0 && errno == EINTR {}
    }

    deinit { close() }

    /// The overlay `layout` of the container whose ROOT is `root`, mounted.
    public static func open(_ layout: OverlayLayout, root: String) throws -> OverlayView {
        try OverlayView(root: root, cacheDirectory: layout.cacheDirectory, options: layout.options)
    }

    /// Copies the merged tree (lowers + upper, whiteouts applied by the kernel) of the overlay
    /// into `directory`: what `LocalRepository.flattenOverlay` asks of the engines. Copies, not
    /// hardlinks: a flat container writes its files in place, which must never reach the cache.
    public static func copyMergedTree(_ layout: OverlayLayout, root: String, into directory: String) throws {
        let view = try open(layout, root: root)
        defer { view.close() }
        var copier = TreeCopy(from: view.path, to: directory)
        try copier.run()
    }
}

/// Copies a tree (no symlink followed; hardlinks kept; modes and mtimes kept; devices skipped).
struct TreeCopy {
    let from: String
    let to: String
    private var links: [UInt64: [UInt8]] = [:]  // inode -> relative path of the first copy
    private var dstRoot: Int32 = -1

    init(from: String, to: String) { self.from = from; self.to = to }

    mutating func run() throws {
        let src = Glibc.open(from, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard src >= 0 else { throw SystemError("open", path: from) }
        defer { Glibc.close(src) }
        let dst = Glibc.open(to, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard dst >= 0 else { throw SystemError("open", path: to) }
        defer { Glibc.close(dst) }
        dstRoot = dst
        try copyDirectory(src, dst, relative: [])
        var st = stat()
        if fstat(src, &st) == 0 { finishDirectory(dst, st) }
    }

    private mutating func copyDirectory(_ src: Int32, _ dst: Int32, relative: [UInt8]) throws {
        for entry in try FileTree.list(src) {
            let name = entry.name
            var st = stat()
            guard withCName(name, { fstatat(src, $0, &st, AT_SYMLINK_NOFOLLOW) }) == 0 else { throw SystemError("stat", path: from) }
            let rel = relative.isEmpty ? name : relative + [0x2F] + name
            let shown = to + "/" + String(decoding: rel, as: UTF8.self)
            switch st.st_mode & S_IFMT {
            case S_IFDIR:
                guard withCName(name, { mkdirat(dst, $0, 0o700) }) == 0 else { throw SystemError("mkdir", path: shown) }
                let s = withCName(name) { openat(src, $0, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) }
                guard s >= 0 else { throw SystemError("open", path: shown) }
                defer { Glibc.close(s) }
                let d = withCName(name) { openat(dst, $0, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) }
                guard d >= 0 else { throw SystemError("open", path: shown) }
                defer { Glibc.close(d) }
                try copyDirectory(s, d, relative: rel)
                finishDirectory(d, st)
            case S_IFREG:
                if st.st_nlink > 1, let first = links[UInt64(st.st_ino)],
                    withCName(first, { f in withCName(name) { linkat(dstRoot, f, dst, $0, 0) } }) == 0
                {
                    continue
                }
                try copyFile(src, dst, name: name, st: st, shown: shown)
                if st.st_nlink > 1 { links[UInt64(st.st_ino)] = rel }
            case S_IFLNK:
                var buf = [UInt8](repeating: 0, count: Int(PATH_MAX) + 1)
                let n = withCName(name) { readlinkat(src, $0, &buf, buf.count - 1) }
                guard n >= 0 else { throw SystemError("readlink", path: shown) }
                let target = Array(buf.prefix(n))
                guard withCName(target, { t in withCName(name) { symlinkat(t, dst, $0) } }) == 0 else {
                    throw SystemError("symlink", path: shown)
                }
                var times = [st.st_atim, st.st_mtim]
                _ = withCName(name) { utimensat(dst, $0, &times, AT_SYMLINK_NOFOLLOW) }
            case S_IFIFO:
                _ = withCName(name) { cl_mkfifoat(dst, $0, st.st_mode & 0o7777) }
            default:
                continue  // devices (and overlay whiteouts, never visible here)
            }
        }
    }

    private func copyFile(_ src: Int32, _ dst: Int32, name: [UInt8], st: stat, shown: String) throws {
        let s = withCName(name) { openat(src, $0, O_RDONLY | O_NOFOLLOW | O_CLOEXEC) }
        guard s >= 0 else { throw SystemError("open", path: shown) }
        defer { Glibc.close(s) }
        let d = withCName(name) { openat(dst, $0, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600) }
        guard d >= 0 else { throw SystemError("create", path: shown) }
        defer { Glibc.close(d) }
        var left = Int(st.st_size)
        while left > 0 {
            let n = Int(cl_copy_file_range(s, d, left))
            if n < 0 && errno == EINTR { continue }
            if n <= 0 {
                // Fallback: read/write.
                var buf = [UInt8](repeating: 0, count: 1 << 16)
                while true {
                    let r = read(s, &buf, buf.count)
                    if r < 0 && errno == EINTR { continue }
                    guard r >= 0 else { throw SystemError("read", path: shown) }
                    if r == 0 { break }
                    guard write(d, buf, r) == r else { throw SystemError("write", path: shown) }
                }
                break
            }
            left -= n
        }
        fchmod(d, st.st_mode & 0o7777 | 0o600)
        var times = [st.st_atim, st.st_mtim]
        futimens(d, &times)
    }

    private func finishDirectory(_ fd: Int32, _ st: stat) {
        fchmod(fd, st.st_mode & 0o7777 | 0o700)
        var times = [st.st_atim, st.st_mtim]
        futimens(fd, &times)
    }
}
