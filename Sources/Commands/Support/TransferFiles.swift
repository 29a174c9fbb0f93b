import FoundationEssentials
import UDockerSystem
#if canImport(Glibc)
import Glibc
#endif

/// Output and input files of export/save and import/load. A named output file is written under
/// a temporary dot-name beside it and linked into place only when complete, so an interrupted
/// command never leaves a truncated archive under the requested name. An existing file is never
/// overwritten (save, as udocker), unless `replace` (export, as udocker): then the complete
/// archive is renamed over it.
enum TransferFiles {
    /// `-` (or no file at all) is stdin/stdout, for every command.
    static func isStdio(_ path: String?) -> Bool { path == nil || path == "-" }

    /// The name of an input in messages.
    static func shown(_ path: String?) -> String { isStdio(path) ? "stdin" : path! }

    static func writeOutput(_ path: String?, what: String, replace: Bool = false, _ body: (Int32) throws -> Void) throws {
        if isStdio(path) {
            guard isatty(1) == 0 else { throw CommandFailure("refusing to write \(what) to a terminal: use -o <file> or redirect stdout") }
            try body(1)
            return
        }
        let path = path!
        guard replace || !FileInfo.exists(path) else { throw CommandFailure("output file already exists: \(path)") }
        guard !FileInfo.isDirectory(path) else { throw CommandFailure("output file is a directory: \(path)") }
        let dir = PathName.parent(path)
        let base = PathName.lastComponent(path)
        let directory = dir.isEmpty ? "." : dir
        removeAbandonedParts(of: base, in: directory)
        let temp = "\(directory)/.\(base).part-\(getpid())"
        let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw CommandFailure("cannot create \(path): \(String(cString: strerror(errno)))") }
        // Held until the file is linked into place: a later run tells a live writer (here or on
        // another node of a shared filesystem) from a killed one.
        _ = flock(fd, LOCK_EX | LOCK_NB)
        do {
            try body(fd)
            guard fsync(fd) == 0 || errno == EINVAL else { throw SystemError("fsync", path: path) }
            close(fd)
            guard (replace ? rename(temp, path) : link(temp, path)) == 0 else {
                let e = errno
                throw CommandFailure(
                    e == EEXIST ? "output file already exists: \(path)" : "cannot create \(path): \(String(cString: strerror(e)))")
            }
            unlink(temp)
        } catch {
            close(fd)
            unlink(temp)
            throw error
        }
    }

    /// `.<base>.part-<pid>` files left beside the target by a killed export/save: removed when
    /// their process is gone from this host and nobody holds their lock (a writer on another node
    /// of a shared filesystem holds it). Never follows a symlink.
    static func removeAbandonedParts(of base: String, in directory: String) {
        let prefix = ".\(base).part-"
        for name in FileInfo.list(directory) where name.hasPrefix(prefix) {
            guard let pid = Int32(name.dropFirst(prefix.count)), pid > 0, pid != getpid() else { continue }
            if kill(pid, 0) == 0 || errno != ESRCH { continue }
            let p = "\(directory)/\(name)"
            let fd = open(p, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)
            guard fd >= 0 else { continue }
            var st = stat()
            if fstat(fd, &st) == 0, st.st_mode & S_IFMT == S_IFREG, st.st_uid == getuid(), flock(fd, LOCK_EX | LOCK_NB) == 0 {
                unlink(p)
                Output().info("removed \(p), left by an interrupted export or save (process \(pid))")
            }
            close(fd)
        }
    }

    /// Opens an input file (or stdin for `-`, refused when it is a terminal: nothing would ever
    /// arrive); the caller closes it unless it is 0.
    static func openInput(_ path: String, noInput: @autoclosure () -> String) throws -> Int32 {
        if isStdio(path) {
            guard isatty(0) == 0 else { throw CommandFailure(noInput()) }
            return 0
        }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw CommandFailure("cannot open \(path): \(String(cString: strerror(errno)))") }
        var st = stat()
        if fstat(fd, &st) == 0, st.st_mode & S_IFMT == S_IFDIR {
            close(fd)
            throw CommandFailure("\(path) is a directory, not an archive")
        }
        return fd
    }
}
