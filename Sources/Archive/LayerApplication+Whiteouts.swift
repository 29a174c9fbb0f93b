import CLinux
import UDockerSystem
#if canImport(Glibc)
import Glibc
#endif

// Whiteouts (`.wh.<name>`) and opaque directories (`.wh..wh..opq`): they hide what lower layers
// put in the root, never what this layer created (`RootResolver.touched`).
extension LayerApplication {
    static let whiteoutPrefix: [UInt8] = Array(".wh.".utf8)
    static let opaqueName: [UInt8] = Array(".wh..wh..opq".utf8)

    func whiteout(_ parent: [[UInt8]], name: [UInt8], shown: String) throws {
        if name == Self.opaqueName {
            if options.recordWhiteouts {
                recordedWhiteouts.append(LayerWhiteouts.Entry(parent: parent, name: nil))
                return
            }
            try drainWriters()
            try opaque(parent)
            return
        }
        let target = Array(name.dropFirst(Self.whiteoutPrefix.count))
        if target.isEmpty || target == [0x2E] || target == [0x2E, 0x2E] {
            throw ArchiveError(.invalidEntry, "invalid whiteout entry '\(shown)'")
        }
        if target.starts(with: Self.whiteoutPrefix) {
            return  // other AUFS metadata (.wh..wh.plnk, .wh..wh.aufs): never materialised
        }
        if options.recordWhiteouts {
            recordedWhiteouts.append(LayerWhiteouts.Entry(parent: parent, name: target))
            return
        }
        try drainWriters()
        // Missing or dead parents (in root) mean there is nothing to remove.
        guard let (pfd, ppath) = try resolver.directory(parent, create: false) else { return }
        // Whiteouts hide lower layers only, never what this layer created.
        if resolver.touched.contains(RootResolver.join(ppath, target)) { return }
        var st = stat()
        guard withCName(target, { fstatat(pfd, $0, &st, AT_SYMLINK_NOFOLLOW) }) == 0 else { return }
        var pst = stat()
        let keepTimes = fstat(pfd, &pst) == 0
        try FileTree.removeEntry(in: pfd, name: target)
        let fmt = st.st_mode & 0o170000
        if fmt == 0o040000 || fmt == 0o120000 { invalidateResolver() }
        if keepTimes { restoreTimes(pfd, pst) }
    }

    /// `.wh..wh..opq`: removes everything in the directory that this layer did not create
    /// (recursing into directories it did touch), whatever the entry order.
    private func opaque(_ dir: [[UInt8]]) throws {
        guard let (dfd, dpath) = try resolver.directory(dir, create: false) else { return }
        var pst = stat()
        let keepTimes = fstat(dfd, &pst) == 0
        if try removeUntouched(dfd, dpath) { invalidateResolver() }
        if keepTimes { restoreTimes(dfd, pst) }
    }

    private func removeUntouched(_ fd: Int32, _ path: [UInt8]) throws -> Bool {
        var removed = false
        for entry in try FileTree.list(fd) {
            let key = RootResolver.join(path, entry.name)
            if !resolver.touched.contains(key) {
                if try FileTree.removeEntry(in: fd, name: entry.name) { removed = true }
                continue
            }
            var isDir = entry.isDirectory
            if !entry.isKnown {
                var st = stat()
                isDir = withCName(entry.name, { fstatat(fd, $0, &st, AT_SYMLINK_NOFOLLOW) }) == 0 && st.st_mode & 0o170000 == 0o040000
            }
            guard isDir else { continue }
            let child = withCName(entry.name) { openat(fd, $0, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) }
            guard child >= 0 else { continue }
            defer { close(child) }
            var cst = stat()
            let keep = fstat(child, &cst) == 0
            if try removeUntouched(child, key) {
                removed = true
                if keep { restoreTimes(child, cst) }
            }
        }
        return removed
    }

    private func restoreTimes(_ fd: Int32, _ st: stat) {
        _ = cl_set_times(
            fd, Int64(st.st_atim.tv_sec), Int64(st.st_atim.tv_nsec),
            Int64(st.st_mtim.tv_sec), Int64(st.st_mtim.tv_nsec))
    }
}
