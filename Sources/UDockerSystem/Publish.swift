import CLinux
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Publishing a finished file under its final name without ever replacing one that exists.
public enum Publish {
    /// Renames `source` to `target` unless `target` exists: `renameat2(RENAME_NOREPLACE)`, or
    /// `link` + `unlink` where the filesystem lacks it (NFS, older kernels), or — on a filesystem
    /// with neither (some FUSE mounts) — a plain rename after checking that `target` is absent.
    /// Returns false, and removes `source`, when `target` already existed (someone else published
    /// first). Throws for any other failure (`source` is then left in place).
    @discardableResult
    public static func renameNoReplace(_ source: String, to target: String) throws -> Bool {
        while true {
            if cl_renameat2(AT_FDCWD, source, AT_FDCWD, target, 1) == 0 { return true }
            let e = errno
            if e == EINTR { continue }
            if e == EEXIST { unlink(source); return false }
            guard e == EINVAL || e == ENOSYS || e == EOPNOTSUPP else {
                throw SystemError("rename", path: target, errno: e)
            }
            break
        }
        if link(source, target) == 0 { unlink(source); return true }
        let e = errno
        if e == EEXIST { unlink(source); return false }
        guard e == EPERM || e == EOPNOTSUPP || e == ENOSYS || e == EXDEV || e == EMLINK else {
            throw SystemError("link", path: target, errno: e)
        }
        var st = stat()
        if lstat(target, &st) == 0 { unlink(source); return false }
        guard rename(source, target) == 0 else { throw SystemError("rename", path: target) }
        return true
    }
}
