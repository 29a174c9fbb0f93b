import CLinux
import FoundationEssentials
import UDockerSystem
#if canImport(Glibc)
import Glibc
#endif

/// A run's own scratch directory, `<tmp>/udocker-run-XXXXXX/`: every per-run file (passwd/group
/// copies, runc bundles, PRoot's and Fakechroot's temporary files) goes there, and it is removed
/// when the run ends. The run holds an OFD lock on its `.lock` for its whole life, so a directory
/// whose lock can be taken belongs to a run that was killed (SIGKILL, node crash): the next run
/// removes it. OFD locks are forwarded by NFS, so runs on other nodes sharing the repository's
/// tmp/ are respected.
public final class RunScratch: @unchecked Sendable {
    public let path: String
    private var lock: FileLock?

    static let prefix = "udocker-run-"

    /// Creates and locks a new scratch directory in `tmpDir` after sweeping the abandoned ones.
    public init(tmpDir: String) throws {
        Self.sweep(tmpDir)
        // A SIGINT/SIGTERM between mkdtemp and the rename to `.lock` would leave a directory the
        // sweep must spare (it cannot tell it from a live run's young one): such a signal takes
        // effect only once `.lock` exists, and the next run then removes the directory.
        cl_signals_defer()
        defer { cl_signals_release() }
        var template = Array("\(tmpDir)/\(Self.prefix)XXXXXX".utf8CString)
        guard let p = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw EngineError(.setupFailed, "cannot create a run directory in \(tmpDir): \(String(cString: strerror(errno)))")
        }
        path = String(cString: p)
        // Locked under another name, then renamed to `.lock`: a sweeper never finds an unlocked
        // `.lock` of a live run (and leaves a young directory without one alone).
        do {
            lock = try FileLock(path: path + "/.lock.new", kind: .exclusive)
            guard rename(path + "/.lock.new", path + "/.lock") == 0 else { throw SystemError("rename", path: path + "/.lock.new") }
        } catch {
            try? FileTree.remove(path)
            throw EngineError(.setupFailed, "cannot lock the run directory \(path): \(error)")
        }
    }

    /// Removes the directory and releases the lock.
    public func remove() {
        guard let lock else { return }
        try? FileTree.remove(path)
        lock.unlock()
        self.lock = nil
    }

    deinit { remove() }

    /// Removes the scratch directories of runs that are gone: lock obtainable, or no lock file and
    /// older than an hour.
    static func sweep(_ tmpDir: String) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: tmpDir) else { return }
        for name in names where name.hasPrefix(prefix) {
            let dir = "\(tmpDir)/\(name)"
            var st = stat()
            guard lstat(dir, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR, st.st_uid == getuid() else { continue }
            if FileInfo.exists(dir + "/.lock") {
                guard let held = try? FileLock.tryLock(path: dir + "/.lock", kind: .exclusive) else { continue }
                try? FileTree.remove(dir)
                held.unlock()
            } else if time(nil) - st.st_mtim.tv_sec > 3600 {
                try? FileTree.remove(dir)
            }
        }
    }
}
