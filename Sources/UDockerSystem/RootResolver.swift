import CLinux
import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif

/// The one audited in-root path resolver. It walks a path component by component on directory
/// file descriptors (`openat(O_NOFOLLOW)`, `readlinkat`), resolving symlinks the way `chroot`
/// would: absolute targets restart at the root and `..` stops at the root. It never follows a
/// symlink out of the root and never builds a host path to make a syscall.
///
/// Directory fds are cached by canonical in-root path (no leading slash, components joined by
/// `/`, `""` is the root). Returned fds are *borrowed*: they stay valid until the next `trim()`
/// or `close()`. Not thread-safe: one resolver per thread/operation.
public final class RootResolver {
    public let root: RootDirectory
    /// O_RDONLY fd on the root directory (owned; -1 once closed).
    public private(set) var rootFD: Int32
    private var cache = DirectoryCache()
    private var retired: [Int32] = []
    /// Directory fds kept before `trim()` drops them all.
    public var cacheLimit = 256
    /// When true, walks that create also chmod u+rwx directories they cannot enter.
    public var fixPermissions = true
    /// When true, every directory a creating walk steps into is added to `touched`.
    public var recordTouched = false
    public private(set) var touched: Set<[UInt8]> = []
    private let umask: mode_t
    /// The process umask, read once (`/proc/self/status`): a run made 11 resolvers, each reading
    /// it. udocker changes its umask only around a keystore write, which makes no resolver.
    private static let processUmask = cl_current_umask()

    public init(root: RootDirectory) throws {
        self.root = root
        let fd = openat(root.fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw SystemError("open", path: root.path) }
        rootFD = fd
        umask = Self.processUmask
    }

    deinit { close() }

    /// Closes every cached fd (including the root fd). The resolver is unusable afterwards. Once
    /// only: `deinit` calls it again after an explicit `close()`, and a second `close(2)` of the
    /// number could close a descriptor another thread has opened since.
    public func close() {
        trimAll()
        if rootFD >= 0 { Glibc.close(rootFD) }
        rootFD = -1
    }

    /// Forgets cached directories (call after removing or replacing a directory or symlink). The
    /// fds stay open until the next `trim()`, so fds borrowed for the current operation remain valid.
    public func invalidate() {
        retired.append(contentsOf: cache.fds)
        cache.removeAll(keepingCapacity: true)
    }

    /// Closes retired fds and, when the cache is over its limit, the cached ones too. Call between
    /// operations, when no borrowed fd is in use.
    public func trim() {
        for fd in retired { Glibc.close(fd) }
        retired.removeAll(keepingCapacity: true)
        if cache.count > cacheLimit { trimAll() }
    }

    private func trimAll() {
        for fd in retired { Glibc.close(fd) }
        retired.removeAll()
        for fd in cache.fds { Glibc.close(fd) }
        cache.removeAll(keepingCapacity: true)
    }

    public func markTouched(_ canonicalPath: [UInt8]) { touched.insert(canonicalPath) }
    public func resetTouched() { touched.removeAll(keepingCapacity: true) }

    /// The outcome of a walk.
    public enum Lookup {
        /// The path is a directory (symlinks followed in root); fd borrowed.
        case directory(fd: Int32, path: [UInt8])
        /// The final component exists in `parentFD` and is not a directory that was entered (a
        /// non-directory, or any entry when `followFinal` is false; not checked for existence then).
        case entry(parentFD: Int32, parentPath: [UInt8], name: [UInt8])
        /// The final component does not exist; its parent does.
        case missing(parentFD: Int32, parentPath: [UInt8], name: [UInt8])
    }

    /// Splits a path into components, dropping empty and `.` components (`..` is kept: its meaning
    /// depends on symlinks, so the walk handles it).
    public static func components(_ path: [UInt8]) -> [[UInt8]] {
        var out: [[UInt8]] = []
        var start = 0
        let n = path.count
        var i = 0
        while i <= n {
            if i == n || path[i] == 0x2F {
                if i > start {
                    let c = Array(path[start..<i])
                    if c != [0x2E] { out.append(c) }
                }
                start = i + 1
            }
            i += 1
        }
        return out
    }

    /// Joins a canonical parent path and a name.
    @inline(__always)
    public static func join(_ parent: [UInt8], _ name: [UInt8]) -> [UInt8] {
        if parent.isEmpty { return name }
        var r = parent
        r.reserveCapacity(parent.count + 1 + name.count)
        r.append(0x2F)
        r.append(contentsOf: name)
        return r
    }

    /// Walks `components` from the root.
    /// - followFinal: resolve a final symlink (in root). When false the final component is returned
    ///   as `.entry` without being looked at.
    /// - create: create missing directories (mode `mode`, exact whatever the umask) and replace
    ///   non-directories that are in the way, like `mkdir -p` in a chroot whose blockers are removed.
    ///   With `create`, the final component is made a directory too.
    /// Returns nil when a component is missing or not a directory (and `create` is false).
    /// Throws on I/O errors and on symlink loops (ELOOP).
    public func resolve(
        _ components: [[UInt8]], followFinal: Bool = true, create: Bool = false,
        mode: mode_t = 0o755
    ) throws -> Lookup? {
        var stack = [[UInt8]](components.reversed())
        var cur: [UInt8] = []
        var curFD = rootFD
        var links = 0
        while let c = stack.popLast() {
            if c.isEmpty || c == [0x2E] { continue }
            if c == [0x2E, 0x2E] {
                if !cur.isEmpty {
                    if let slash = cur.lastIndex(of: 0x2F) { cur.removeSubrange(slash...) } else { cur.removeAll() }
                    curFD = try directoryFD(canonical: cur)
                }
                continue
            }
            let isLast = stack.isEmpty
            if isLast && !followFinal && !create {
                return .entry(parentFD: curFD, parentPath: cur, name: c)
            }
            let child = RootResolver.join(cur, c)
            if let fd = cache[child] {
                if recordTouched && create { touched.insert(child) }
                cur = child; curFD = fd
                continue
            }
            var fixed = false
            var replaced = false
            stepLoop: while true {
                let fd = withCName(c) { openat(curFD, $0, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) }
                if fd >= 0 {
                    cache[child] = fd
                    if recordTouched && create { touched.insert(child) }
                    cur = child; curFD = fd
                    break stepLoop
                }
                let e = errno
                switch e {
                case EINTR:
                    continue stepLoop
                case ENOENT:
                    if !create {
                        return isLast ? .missing(parentFD: curFD, parentPath: cur, name: c) : nil
                    }
                    try makeDirectory(in: curFD, name: c, mode: mode, display: child)
                    continue stepLoop
                case ENOTDIR, ELOOP:
                    if let target = readLink(in: curFD, name: c) {
                        links += 1
                        if links > 40 { throw SystemError("resolve", path: display(child), errno: ELOOP) }
                        if target.first == 0x2F { cur = []; curFD = rootFD }
                        stack.append(contentsOf: RootResolver.components(target).reversed())
                        break stepLoop
                    }
                    // A non-directory.
                    if !create {
                        return isLast ? .entry(parentFD: curFD, parentPath: cur, name: c) : nil
                    }
                    if replaced { throw SystemError("mkdir", path: display(child), errno: e) }
                    replaced = true
                    try FileTree.removeEntry(in: curFD, name: c, displayPath: display(child))
                    continue stepLoop
                case EACCES where fixPermissions && !fixed, EPERM where fixPermissions && !fixed:
                    fixed = true
                    _ = FileTree.ensureOwnerRWX(fd: curFD)
                    var st = stat()
                    if withCName(c, { fstatat(curFD, $0, &st, AT_SYMLINK_NOFOLLOW) }) == 0, st.st_mode & 0o170000 == 0o040000 {
                        _ = withCName(c) { cl_fchmodat_nofollow(curFD, $0, (st.st_mode & 0o7777) | 0o700) }
                    }
                    continue stepLoop
                default:
                    throw SystemError("open", path: display(child), errno: e)
                }
            }
        }
        return .directory(fd: curFD, path: cur)
    }

    /// Convenience: resolve a path given as bytes (absolute or relative, both from the root).
    public func resolve(path: [UInt8], followFinal: Bool = true, create: Bool = false, mode: mode_t = 0o755) throws -> Lookup? {
        try resolve(RootResolver.components(path), followFinal: followFinal, create: create, mode: mode)
    }

    /// Resolves a path that must be a directory; nil when missing or not a directory.
    public func directory(_ components: [[UInt8]], create: Bool = false, mode: mode_t = 0o755) throws -> (fd: Int32, path: [UInt8])? {
        if case .directory(let fd, let p)? = try resolve(components, followFinal: true, create: create, mode: mode) {
            return (fd, p)
        }
        return nil
    }

    /// The fd of a canonical (symlink-free) directory path, from the cache or by re-walking it with
    /// O_NOFOLLOW on every component.
    public func directoryFD(canonical path: [UInt8]) throws -> Int32 {
        if path.isEmpty { return rootFD }
        if let fd = cache[path] { return fd }
        var cur: [UInt8] = []
        var curFD = rootFD
        for c in RootResolver.components(path) {
            let child = RootResolver.join(cur, c)
            if let fd = cache[child] { cur = child; curFD = fd; continue }
            let fd = withCName(c) { openat(curFD, $0, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) }
            guard fd >= 0 else { throw SystemError("open", path: display(child)) }
            cache[child] = fd
            cur = child; curFD = fd
        }
        return curFD
    }

    /// readlinkat; nil when the entry is not a symlink.
    public func readLink(in dirFD: Int32, name: [UInt8]) -> [UInt8]? {
        var size = 256
        while true {
            var buf = [UInt8](repeating: 0, count: size)
            let n = withCName(name) { cname in
                buf.withUnsafeMutableBytes { readlinkat(dirFD, cname, $0.baseAddress!.assumingMemoryBound(to: CChar.self), size) }
            }
            if n < 0 { return nil }
            if n < size { return Array(buf[0..<n]) }
            size *= 4
            if size > 1 << 20 { return nil }
        }
    }

    private func makeDirectory(in dirFD: Int32, name: [UInt8], mode: mode_t, display child: [UInt8]) throws {
        let m = mode & 0o7777
        var r = withCName(name) { mkdirat(dirFD, $0, m) }
        if r != 0 && (errno == EACCES || errno == EPERM) && fixPermissions && FileTree.ensureOwnerRWX(fd: dirFD) {
            r = withCName(name) { mkdirat(dirFD, $0, m) }
        }
        if r != 0 {
            if errno == EEXIST { return }  // raced or re-created: the next open decides
            throw SystemError("mkdir", path: display(child))
        }
        if m & ~umask != m {
            _ = withCName(name) { cl_fchmodat_nofollow(dirFD, $0, m) }
        }
    }

    /// A printable in-root path ("/a/b") for messages.
    public func display(_ canonical: [UInt8]) -> String {
        "/" + String(decoding: canonical, as: UTF8.self)
    }
}

/// Canonical in-root path → directory fd. A few entries (a run's lookups) sit in a list; from 32
/// on (an extraction) in a dictionary. A dictionary keyed by `[UInt8]` costs its first user a
/// run-time conformance lookup (5 % of a `run`), which a run need not pay.
struct DirectoryCache {
    private var list: [(path: [UInt8], fd: Int32)] = []
    private var table: [[UInt8]: Int32]?
    private static let listLimit = 32

    var count: Int { table?.count ?? list.count }
    var fds: [Int32] { table.map { Array($0.values) } ?? list.map { $0.fd } }

    subscript(path: [UInt8]) -> Int32? {
        get {
            if let table { return table[path] }
            return list.first { $0.path == path }?.fd
        }
        set {
            guard let fd = newValue else { preconditionFailure("DirectoryCache: entries are removed with removeAll") }
            if table != nil {
                table![path] = fd
            } else if let i = list.firstIndex(where: { $0.path == path }) {
                list[i].fd = fd
            } else if list.count < Self.listLimit {
                list.append((path, fd))
            } else {
                var t = [[UInt8]: Int32](minimumCapacity: 2 * Self.listLimit)
                for e in list { t[e.path] = e.fd }
                t[path] = fd
                table = t
                list.removeAll()
            }
        }
    }

    mutating func removeAll(keepingCapacity keep: Bool) {
        list.removeAll(keepingCapacity: keep)
        table?.removeAll(keepingCapacity: keep)
    }
}
