import CLinux
import OCI
import UDockerSystem
#if canImport(Glibc)
import Glibc
#endif

/// A streaming tar writer (POSIX ustar; PAX `x` records for names, link names and sizes that do not
/// fit). Owner and group are written as 0 with empty names, so an archive made without privileges
/// reads as root-owned everywhere, as rootfs tarballs are expected to be.
///
/// Output goes to a file descriptor (a file, a pipe, stdout) that is not closed. Call `finish()`
/// to write the end-of-archive blocks.
public final class TarWriter {
    private let fd: Int32
    private let buffer: UnsafeMutableRawPointer
    private let capacity = 1 << 20
    private var used = 0
    public private(set) var bytesWritten: Int64 = 0
    /// Things left out of a tree (sockets, other filesystems).
    public private(set) var warnings: [String] = []

    public init(fileDescriptor: Int32) {
        fd = fileDescriptor
        buffer = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 64)
    }

    deinit { buffer.deallocate() }

    // MARK: - entries

    public enum EntryKind { case regular, directory, symlink, hardlink, characterDevice, blockDevice, fifo }

    /// Writes one header (and PAX records when needed). For `.regular`, `size` bytes of data must follow.
    public func writeHeader(
        name: [UInt8], kind: EntryKind, size: Int64 = 0, mode: UInt32 = 0o644,
        mtime: Int64 = 0, linkName: [UInt8] = [], devMajor: UInt32 = 0, devMinor: UInt32 = 0
    ) throws {
        var pax: [(String, [UInt8])] = []
        var shortName = name
        var prefix: [UInt8] = []
        if name.count > 100 {
            if let split = Self.ustarSplit(name) {
                prefix = split.0; shortName = split.1
            } else {
                pax.append(("path", name)); shortName = Array(name.suffix(99))
            }
        }
        var shortLink = linkName
        if linkName.count > 100 { pax.append(("linkpath", linkName)); shortLink = Array(linkName.prefix(100)) }
        var sizeField = size
        if size > 0o77777777777 { pax.append(("size", Array(String(size).utf8))); sizeField = 0 }
        let mt = max(0, min(mtime, 0o77777777777))
        if !pax.isEmpty {
            var records: [UInt8] = []
            for (k, v) in pax { records += Self.paxRecord(k, v) }
            try writeRawHeader(
                name: Array("PaxHeaders/".utf8) + Array(shortName.suffix(80)), prefix: [], type: 0x78,
                size: Int64(records.count), mode: 0o644, mtime: mt, link: [], major: 0, minor: 0)
            try write(records)
            try pad(Int64(records.count))
        }
        let type: UInt8
        switch kind {
        case .regular: type = 0x30
        case .hardlink: type = 0x31
        case .symlink: type = 0x32
        case .characterDevice: type = 0x33
        case .blockDevice: type = 0x34
        case .directory: type = 0x35
        case .fifo: type = 0x36
        }
        try writeRawHeader(
            name: shortName, prefix: prefix, type: type, size: kind == .regular ? sizeField : 0,
            mode: mode & 0o7777, mtime: mt, link: shortLink, major: devMajor, minor: devMinor)
    }

    /// A regular file from memory.
    public func addFile(name: String, bytes: [UInt8], mode: UInt32 = 0o644, mtime: Int64 = 0) throws {
        try writeHeader(name: Array(name.utf8), kind: .regular, size: Int64(bytes.count), mode: mode, mtime: mtime)
        try write(bytes)
        try pad(Int64(bytes.count))
    }

    public func addDirectory(name: String, mode: UInt32 = 0o755, mtime: Int64 = 0) throws {
        var n = Array(name.utf8)
        if n.last != 0x2F { n.append(0x2F) }
        try writeHeader(name: n, kind: .directory, mode: mode, mtime: mtime)
    }

    /// A regular file whose data is `size` bytes read from `fd` (short reads are padded with zeros,
    /// extra bytes ignored: a file that changes while it is archived cannot break the archive).
    public func addFile(name: [UInt8], from sourceFD: Int32, size: Int64, mode: UInt32, mtime: Int64) throws {
        try writeHeader(name: name, kind: .regular, size: size, mode: mode, mtime: mtime)
        var left = size
        while left > 0 {
            if used == capacity { try flush() }
            let want = Int(min(Int64(capacity - used), left))
            let n = read(sourceFD, buffer + used, want)
            if n < 0 { if errno == EINTR { continue }; throw ArchiveError.io("read", printable(name)) }
            if n == 0 {
                warnings.append("file shrank while archived: \(printable(name))")
                try writeZeros(Int(left)); left = 0; break
            }
            used += n; bytesWritten += Int64(n); left -= Int64(n)
        }
        try pad(size)
    }

    /// A regular file holding the *decompressed* content of a (gzip, zstd or plain) file, whose
    /// decompressed size must be known (see `LayerInspector`). Returns the sha256 of what was written.
    @discardableResult
    public func addDecompressedFile(name: String, sourcePath: String, size: Int64, mode: UInt32 = 0o644, mtime: Int64 = 0) throws -> Digest
    {
        let src = open(sourcePath, O_RDONLY | O_CLOEXEC)
        guard src >= 0 else { throw ArchiveError.io("open", sourcePath) }
        defer { close(src) }
        try writeHeader(name: Array(name.utf8), kind: .regular, size: size, mode: mode, mtime: mtime)
        let decoder = try Decompressor(fd: src)
        var hasher = DigestHasher()
        var total: Int64 = 0
        while true {
            if used == capacity { try flush() }
            let n = try decoder.read(into: buffer + used, count: capacity - used)
            if n == 0 { break }
            total += Int64(n)
            guard total <= size else { throw ArchiveError(.io, "\(sourcePath) changed while it was archived") }
            hasher.update(UnsafeRawBufferPointer(start: buffer + used, count: n))
            used += n; bytesWritten += Int64(n)
        }
        guard total == size else { throw ArchiveError(.io, "\(sourcePath) changed while it was archived") }
        try pad(size)
        return hasher.finalize()
    }

    /// Archives the tree below `root` as `./`, `./a`, `./a/b`…: directories, regular files (hard
    /// links kept), symlinks, FIFOs and device nodes; sockets and mount points of other filesystems
    /// are left out (with a warning). Never follows a symlink. `exclude` receives paths relative
    /// to the root (`a/b`). With a `prefix` (`./ROOT`), the tree is archived under that directory.
    public func addTree(at root: String, prefix: String = ".", exclude: (String) -> Bool = { _ in false }) throws {
        let rfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard rfd >= 0 else { throw ArchiveError.io("open", root) }
        defer { close(rfd) }
        var st = stat()
        guard fstat(rfd, &st) == 0 else { throw ArchiveError.io("stat", root) }
        let base = Array(prefix.utf8) + [0x2F]
        try writeHeader(name: base, kind: .directory, mode: UInt32(st.st_mode & 0o7777), mtime: Int64(st.st_mtim.tv_sec))
        var links: [String: [UInt8]] = [:]
        try walk(rfd, rel: [], base: base, device: st.st_dev, links: &links, exclude: exclude)
    }

    private func walk(
        _ dfd: Int32, rel: [UInt8], base: [UInt8], device: UInt, links: inout [String: [UInt8]],
        exclude: (String) -> Bool
    ) throws {
        let entries = try FileTree.list(dfd).map(\.name).sorted { $0.lexicographicallyPrecedes($1) }
        for name in entries {
            let relPath = rel.isEmpty ? name : rel + [0x2F] + name
            if exclude(String(decoding: relPath, as: UTF8.self)) { continue }
            let tarName = base + relPath
            var st = stat()
            guard withCName(name, { fstatat(dfd, $0, &st, AT_SYMLINK_NOFOLLOW) }) == 0 else {
                if errno == ENOENT { continue }
                throw ArchiveError.io("stat", printable(relPath))
            }
            let mode = UInt32(st.st_mode & 0o7777)
            let mtime = Int64(st.st_mtim.tv_sec)
            switch st.st_mode & S_IFMT {
            case S_IFDIR:
                try writeHeader(name: tarName + [0x2F], kind: .directory, mode: mode, mtime: mtime)
                if st.st_dev != device { warnings.append("not crossing into another filesystem: \(printable(relPath))"); continue }
                let cfd = withCName(name) { openat(dfd, $0, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) }
                guard cfd >= 0 else { throw ArchiveError.io("open", printable(relPath)) }
                defer { close(cfd) }
                try walk(cfd, rel: relPath, base: base, device: device, links: &links, exclude: exclude)
            case S_IFREG:
                let key = "\(st.st_dev):\(st.st_ino)"
                if st.st_nlink > 1, let first = links[key] {
                    try writeHeader(name: tarName, kind: .hardlink, mode: mode, mtime: mtime, linkName: first)
                    continue
                }
                if st.st_nlink > 1 { links[key] = tarName }
                let ffd = withCName(name) { openat(dfd, $0, O_RDONLY | O_NOFOLLOW | O_CLOEXEC) }
                guard ffd >= 0 else { throw ArchiveError.io("open", printable(relPath)) }
                defer { close(ffd) }
                try addFile(name: tarName, from: ffd, size: Int64(st.st_size), mode: mode, mtime: mtime)
            case S_IFLNK:
                var buf = [UInt8](repeating: 0, count: 4097)
                let n = withCName(name) { p in
                    buf.withUnsafeMutableBufferPointer {
                        readlinkat(dfd, p, UnsafeMutableRawPointer($0.baseAddress!).assumingMemoryBound(to: CChar.self), 4096)
                    }
                }
                guard n >= 0 else { throw ArchiveError.io("readlink", printable(relPath)) }
                try writeHeader(name: tarName, kind: .symlink, mode: 0o777, mtime: mtime, linkName: Array(buf[0..<n]))
            case S_IFIFO:
                try writeHeader(name: tarName, kind: .fifo, mode: mode, mtime: mtime)
            case S_IFCHR, S_IFBLK:
                let rdev = UInt64(st.st_rdev)
                let major = UInt32(((rdev >> 8) & 0xfff) | ((rdev >> 32) & ~UInt64(0xfff)))
                let minor = UInt32((rdev & 0xff) | ((rdev >> 12) & ~UInt64(0xff)))
                try writeHeader(
                    name: tarName, kind: (st.st_mode & S_IFMT) == S_IFCHR ? .characterDevice : .blockDevice,
                    mode: mode, mtime: mtime, devMajor: major, devMinor: minor)
            default:
                warnings.append("socket left out: \(printable(relPath))")
            }
        }
    }

    /// Two zero blocks, then everything is flushed.
    public func finish() throws {
        try writeZeros(1024)
        try flush()
    }

    // MARK: - raw output

    public func write(_ bytes: [UInt8]) throws {
        var off = 0
        while off < bytes.count {
            if used == capacity { try flush() }
            let n = min(capacity - used, bytes.count - off)
            bytes.withUnsafeBytes { (buffer + used).copyMemory(from: $0.baseAddress! + off, byteCount: n) }
            used += n; off += n; bytesWritten += Int64(n)
        }
    }

    private func writeZeros(_ count: Int) throws {
        var left = count
        while left > 0 {
            if used == capacity { try flush() }
            let n = min(capacity - used, left)
            (buffer + used).initializeMemory(as: UInt8.self, repeating: 0, count: n)
            used += n; left -= n; bytesWritten += Int64(n)
        }
    }

    private func pad(_ size: Int64) throws {
        let p = Int((512 - size % 512) % 512)
        if p > 0 { try writeZeros(p) }
    }

    public func flush() throws {
        var off = 0
        while off < used {
            let n = Glibc.write(fd, buffer + off, used - off)
            if n < 0 {
                if errno == EINTR { continue }
                throw ArchiveError.io("write")
            }
            off += n
        }
        used = 0
    }

    private func writeRawHeader(
        name: [UInt8], prefix: [UInt8], type: UInt8, size: Int64, mode: UInt32,
        mtime: Int64, link: [UInt8], major: UInt32, minor: UInt32
    ) throws {
        var h = [UInt8](repeating: 0, count: 512)
        func put(_ bytes: [UInt8], _ off: Int, _ len: Int) { for (i, b) in bytes.prefix(len).enumerated() { h[off + i] = b } }
        func octal(_ v: Int64, _ off: Int, _ len: Int) {
            var s = Array(String(v, radix: 8).utf8)
            while s.count < len - 1 { s.insert(0x30, at: 0) }
            put(s, off, len - 1)
        }
        put(name, 0, 100)
        octal(Int64(mode), 100, 8)
        octal(0, 108, 8)
        octal(0, 116, 8)
        octal(size, 124, 12)
        octal(mtime, 136, 12)
        for i in 148..<156 { h[i] = 0x20 }
        h[156] = type
        put(link, 157, 100)
        put(Array("ustar\0".utf8), 257, 6)
        put(Array("00".utf8), 263, 2)
        if type == 0x33 || type == 0x34 { octal(Int64(major), 329, 8); octal(Int64(minor), 337, 8) }
        put(prefix, 345, 155)
        let sum = h.reduce(0) { $0 + Int64($1) }
        var cs = Array(String(sum, radix: 8).utf8)
        while cs.count < 6 { cs.insert(0x30, at: 0) }
        put(cs + [0, 0x20], 148, 8)
        try write(h)
    }

    /// ustar prefix/name split at a `/` so that name ≤ 100 and prefix ≤ 155 bytes.
    static func ustarSplit(_ path: [UInt8]) -> ([UInt8], [UInt8])? {
        guard path.count <= 256 else { return nil }
        for i in stride(from: min(path.count - 1, 155), through: 1, by: -1) where path[i] == 0x2F {
            let name = Array(path[(i + 1)...])
            if name.count <= 100 && !name.isEmpty { return (Array(path[..<i]), name) }
        }
        return nil
    }

    static func paxRecord(_ key: String, _ value: [UInt8]) -> [UInt8] {
        let body = Array(" \(key)=".utf8) + value + [0x0A]
        var len = body.count + 1
        while String(len).utf8.count + body.count != len { len = String(len).utf8.count + body.count }
        return Array(String(len).utf8) + body
    }
}
