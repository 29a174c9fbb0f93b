import CLinux
import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif

/// Small-file I/O for repository metadata: every write goes to a temporary file in the same
/// directory, is fsync-ed and renamed into place (the directory fsync-ed after), so a reader, or
/// the next command after a crash or power loss, sees the old or the new content, never a torn one.
public enum AtomicFile {
    public static func write(_ bytes: [UInt8], to path: String, mode: mode_t = 0o644) throws {
        let dir = PathName.parent(path)
        let tmp = "\(dir)/.\(PathName.lastComponent(path)).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = try syscall("create", path: tmp) { open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode) }
        var ok = false
        defer {
            close(fd)
            if !ok { unlink(tmp) }
        }
        var offset = 0
        try bytes.withUnsafeBytes { raw in
            while offset < raw.count {
                let n = Glibc.write(fd, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw SystemError("write", path: tmp)
                }
                offset += n
            }
        }
        // Durable before it is visible: after a crash the name holds the old or the new content,
        // never a renamed-in empty file (ext4/XFS may persist the rename before the data).
        try syscall("fsync", path: tmp) { fsync(fd) }
        try syscall("rename", path: path) { rename(tmp, path) }
        ok = true
        syncDirectory(dir)
    }

    /// The process id in the name of a temporary of `write` (`.<name>.tmp-<pid>-<n>`), nil when
    /// `name` is not one. A temporary whose writer was killed stays behind; prune removes it.
    public static func temporaryWriter(ofName name: String) -> pid_t? {
        guard name.hasPrefix(".") else { return nil }
        let fields = name.split(separator: ".", omittingEmptySubsequences: false)
        guard fields.count >= 3, let last = fields.last, last.hasPrefix("tmp-") else { return nil }
        let parts = last.dropFirst(4).split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2, let pid = pid_t(parts[0]), pid > 0, UInt32(parts[1]) != nil else { return nil }
        return pid
    }

    /// Makes a rename in `dir` durable (best effort: some filesystems refuse fsync on directories).
    public static func syncDirectory(_ dir: String) {
        let dfd = open(dir.isEmpty ? "." : dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard dfd >= 0 else { return }
        _ = fsync(dfd)
        close(dfd)
    }

    public static func write(_ string: String, to path: String, mode: mode_t = 0o644) throws {
        try write(Array(string.utf8), to: path, mode: mode)
    }

    /// Reads a whole (small) file; nil when it does not exist or cannot be read.
    public static func read(_ path: String) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { return nil }
        defer { close(fd) }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buf.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 { if errno == EINTR { continue }; return nil }
            if n == 0 { break }
            out.append(contentsOf: buf[0..<n])
        }
        return out
    }

    public static func readString(_ path: String) -> String? {
        read(path).map { String(decoding: $0, as: UTF8.self) }
    }
}

/// Durability helpers for large files written in pieces.
public enum Writeback {
    /// Starts writing a byte range of `fd` back to disk without waiting (`sync_file_range` with
    /// `SYNC_FILE_RANGE_WRITE`): a later `fsync` then waits only for what is still dirty. Gives no
    /// durability by itself; failures are ignored (the `fsync` reports them).
    public static func start(_ fd: Int32, offset: Int64, length: Int64) {
        _ = cl_start_writeback(fd, offset, length)
    }
}

/// Thin, allocation-light wrappers for path queries used on hot paths.
public enum FileInfo {
    public static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 || isSymlink(path) }
    public static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }
    public static func isRegularFile(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG
    }
    public static func isSymlink(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFLNK
    }
    public static func size(_ path: String) -> Int64? {
        var st = stat()
        return stat(path, &st) == 0 ? Int64(st.st_size) : nil
    }
    public static func readLink(_ path: String) -> String? {
        var buf = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink(path, &buf, buf.count - 1)
        if n < 0 { return nil }
        return String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
    /// Entries of a directory, without "." and "..".
    public static func list(_ path: String) -> [String] {
        guard let d = opendir(path) else { return [] }
        defer { closedir(d) }
        var names: [String] = []
        while let e = readdir(d) {
            let name = withUnsafePointer(to: e.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }
    /// mkdir -p for repository-owned paths (not for paths inside a container ROOT).
    public static func makeDirectories(_ path: String, mode: mode_t = 0o755) throws {
        if isDirectory(path) { return }
        let parent = PathName.parent(path)
        if !parent.isEmpty && parent != path { try makeDirectories(parent, mode: mode) }
        if mkdir(path, mode) != 0 && errno != EEXIST { throw SystemError("mkdir", path: path) }
    }
}
