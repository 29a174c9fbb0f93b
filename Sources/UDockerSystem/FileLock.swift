import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif

/// An exclusive or shared lock on a file, held through an open file description (`F_OFD_SETLKW`).
/// OFD locks are POSIX record locks: Linux NFS clients forward them to the server (NLM / NFSv4), so
/// the lock holds across nodes of a cluster, unlike BSD `flock` on some filesystems. They are tied to
/// the descriptor, which is close-on-exec, so a container never inherits one.
public final class FileLock: @unchecked Sendable {
    public enum Kind { case shared, exclusive }
    private var fd: Int32
    public let path: String
    /// False when the filesystem refuses every kind of lock and the caller goes on unlocked.
    public private(set) var isHeld = true

    /// Blocks until the lock is granted. Creates the lock file if needed.
    public init(path: String, kind: Kind = .exclusive) throws {
        self.path = path
        var opened = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o644)
        if opened < 0 && kind == .shared && (errno == EACCES || errno == EROFS || errno == EPERM) {
            // A repository the user may only read (root's, or a trusted owner's): a read lock
            // needs only read access; without a lock file its owner has never locked it.
            opened = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
            if opened < 0 && errno == ENOENT { fd = -1; isHeld = false; return }
        }
        guard opened >= 0 else { throw SystemError("open lock file", path: path) }
        fd = opened
        var fl = flock()
        fl.l_type = Int16(kind == .exclusive ? F_WRLCK : F_RDLCK)
        fl.l_whence = Int16(SEEK_SET)
        fl.l_start = 0
        fl.l_len = 0
        let F_OFD_SETLKW: Int32 = 38
        while fcntl(fd, F_OFD_SETLKW, &fl) == -1 {
            let e = errno
            if e == EINTR { continue }
            // Filesystems without OFD support: fall back to classic flock.
            if e == EINVAL || e == ENOLCK || e == EOPNOTSUPP || e == ENOSYS {
                if flock(fd, kind == .exclusive ? LOCK_EX : LOCK_SH) == 0 { return }
                // No locks at all here (Lustre `noflock`, some NFS/FUSE mounts): go on unlocked,
                // as udocker does; what must not race is built from atomic renames instead.
                let f = errno
                if f == ENOLCK || f == ENOSYS || f == EOPNOTSUPP { isHeld = false; return }
            }
            close(fd)
            throw SystemError("lock", path: path, errno: e)
        }
    }

    init(adopting fd: Int32, path: String) { self.fd = fd; self.path = path }

    /// Releases the lock (closing the descriptor releases it too).
    public func unlock() {
        if fd >= 0 { close(fd); fd = -1 }
    }

    deinit { unlock() }

    /// Runs `body` while holding the lock.
    public static func withLock<T>(_ path: String, kind: Kind = .exclusive, _ body: () throws -> T) throws -> T {
        let lock = try FileLock(path: path, kind: kind)
        defer { lock.unlock() }
        return try body()
    }
}

extension FileLock {
    /// Tries once; nil when another holder has a conflicting lock.
    public static func tryLock(path: String, kind: Kind) throws -> FileLock? {
        let fd = try syscall("open lock file", path: path) { open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o644) }
        var fl = flock()
        fl.l_type = Int16(kind == .exclusive ? F_WRLCK : F_RDLCK)
        fl.l_whence = Int16(SEEK_SET)
        let F_OFD_SETLK: Int32 = 37
        if fcntl(fd, F_OFD_SETLK, &fl) == -1 {
            let e = errno
            close(fd)
            if e == EAGAIN || e == EACCES { return nil }
            throw SystemError("lock", path: path, errno: e)
        }
        return FileLock(adopting: fd, path: path)
    }
}
