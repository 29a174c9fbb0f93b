import CLinux
import FoundationEssentials
import UDockerSystem
#if canImport(Glibc)
import Glibc
#endif

/// A run's own scratch directory, `<tmp>/udocker-run-<uid>.<n>/`: every per-run file (passwd/group
/// copies, runc bundles, PRoot's and Fakechroot's temporary files) goes there, and it is removed
/// when the run ends. The run holds an OFD lock on its `.lock` for its whole life, so a directory
/// whose lock can be taken belongs to a run that was killed (SIGKILL, node crash): a later run
/// removes it. OFD locks are forwarded by NFS, so runs on other nodes sharing the repository's
/// tmp/ are respected.
///
/// The names are slots: a run takes the lowest `n` that is free or whose run is gone, and looks
/// at the slots after it up to the first `gap` free ones, removing those whose runs are gone. So
/// no run lists the tmp directory (a node's `/tmp` holds thousands of entries, a few ms of CPU
/// per listing): a killed run's directory is removed by the next run that reaches its slot, which
/// is the next run at all unless more than `gap` slots below it are free; at most as many
/// directories exist as runs ran at the same time. Names in a shared directory can be taken by
/// someone else first: a slot that is not our directory is skipped, and when every slot is busy
/// the run sweeps the whole directory and takes a `mkdtemp` name as before.
public final class RunScratch: @unchecked Sendable {
    public let path: String
    private var lock: FileLock?

    static let prefix = "udocker-run-"
    static let slots = 64
    static let gap = 4

    /// Creates and locks a new scratch directory in `tmpDir`, removing abandoned ones on the way.
    public init(tmpDir: String) throws {
        // A SIGINT/SIGTERM between mkdir and the rename to `.lock` would leave a directory the
        // sweep must spare (it cannot tell it from a live run's young one): such a signal takes
        // effect only once `.lock` exists, and the next run then removes the directory.
        cl_signals_defer()
        defer { cl_signals_release() }
        path = try Self.makeDirectory(tmpDir)
        // Locked under another name, then renamed to `.lock`: a sweeper never finds an unlocked
        // `.lock` of a live run (and leaves a young directory without one alone).
        do {
            lock = try FileLock(path: path + "/.lock.new", kind: .exclusive)
            guard rename(path + "/.lock.new", path + "/.lock") == 0 else { throw SystemError("rename", path: path + "/.lock.new") }
        } catch {
            try? FileTree.remove(path)
            throw EngineError(.io, "cannot lock the run directory \(path): \(error)", cause: error)
        }
    }

    /// The lowest free slot (see the type); the abandoned directories of the slots looked at are removed.
    static func makeDirectory(_ tmpDir: String) throws -> String {
        let uid = getuid()
        let base = "\(tmpDir)/\(prefix)\(uid)."
        var taken: String?
        var free = 0
        for n in 0..<slots {
            let dir = base + String(n)
            var st = stat()
            let exists = lstat(dir, &st) == 0 && !(sweepOne(dir, uid: uid, st) ?? false)
            if exists {
                free = 0
                continue
            }
            if taken != nil {
                free += 1
                if free >= gap { break }
            } else if mkdir(dir, 0o700) == 0 {
                taken = dir
            } else if errno != EEXIST {
                throw EngineError(.io, "cannot create a run directory in \(tmpDir): \(String(cString: strerror(errno)))")
            }
        }
        if let taken { return taken }
        sweep(tmpDir)
        var template = Array("\(tmpDir)/\(prefix)XXXXXX".utf8CString)
        guard let p = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw EngineError(.io, "cannot create a run directory in \(tmpDir): \(String(cString: strerror(errno)))")
        }
        return String(cString: p)
    }

    /// Removes the directory and releases the lock.
    public func remove() {
        guard let lock else { return }
        try? FileTree.remove(path)
        lock.unlock()
        self.lock = nil
    }

    deinit { remove() }

    /// Removes the scratch directories (slots and `mkdtemp` names) of runs that are gone: lock
    /// obtainable, or no lock file and older than an hour. Only when every slot is busy. The tmp
    /// directory is shared (`/tmp` on a node holds thousands of
    /// entries): its names are compared with the prefix as they come from `readdir`, so only our
    /// own entries are turned into strings and `lstat`ed (the listing itself is a few `getdents64`).
    static func sweep(_ tmpDir: String) {
        guard let dir = opendir(tmpDir) else { return }
        defer { closedir(dir) }
        let uid = getuid()
        let known = prefix.utf8CString  // with its NUL
        let prefixLength = known.count - 1
        while let entry = readdir(dir) {
            guard let cname = cl_dirent_name(entry) else { continue }
            let type = cl_dirent_type(entry)
            guard type == UInt8(DT_DIR) || type == UInt8(DT_UNKNOWN) else { continue }
            let matches = known.withUnsafeBufferPointer { strncmp(cname, $0.baseAddress!, prefixLength) == 0 }
            guard matches else { continue }
            let dir = "\(tmpDir)/\(String(cString: cname))"
            var st = stat()
            if lstat(dir, &st) == 0 { _ = sweepOne(dir, uid: uid, st) }
        }
    }

    /// Removes `dir` (lstat `st`) if it is our run directory and its run is gone; true if removed,
    /// false if it is a live run's, nil if it is not our directory.
    @discardableResult
    static func sweepOne(_ dir: String, uid: uid_t, _ st: stat) -> Bool? {
        guard (st.st_mode & S_IFMT) == S_IFDIR, st.st_uid == uid else { return nil }
        if FileInfo.exists(dir + "/.lock") {
            guard let held = try? FileLock.tryLock(path: dir + "/.lock", kind: .exclusive) else { return false }
            defer { held.unlock() }
            return (try? FileTree.remove(dir)) != nil
        } else if time(nil) - st.st_mtim.tv_sec > 3600 {
            return (try? FileTree.remove(dir)) != nil
        }
        return false
    }
}
