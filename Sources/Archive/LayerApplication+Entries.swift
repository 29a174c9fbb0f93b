import CLinux
import UDockerSystem
#if canImport(Glibc)
import Glibc
#endif

// Creating one entry of each type, with replace-and-retry when its name is taken.
extension LayerApplication {
    func writeFile(_ h: TarHeader, _ tar: TarReader, in pfd: Int32, name: [UInt8], shown: String) throws {
        let perm = filePermissions(h)
        let flags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC
        var fd = createRetrying(pfd) { withCName(name) { openat(pfd, $0, flags, perm) } }
        if fd < 0 && errno == EEXIST {
            _ = try replaceExisting(in: pfd, name: name, newIsDirectory: false, shown: shown)
            fd = createRetrying(pfd) { withCName(name) { openat(pfd, $0, flags, perm) } }
        }
        guard fd >= 0 else { throw ioError("create", shown) }
        var closed = false
        defer { if !closed { close(fd) } }
        try tar.readData { chunk in try writeAll(fd, chunk, shown) }
        if perm & ~umask != perm { fchmod(fd, perm) }
        _ = cl_set_mtime(fd, nil, h.mtime, h.mtimeNanoseconds, 0)
        closed = true
        if close(fd) != 0 && errno != EINTR { throw ioError("close", shown) }
    }

    /// Hands a regular file to the writer pool. The name is made free here first (unless the
    /// directory is one this layer created empty and the name is not one this layer made), so a
    /// worker only ever creates a new name; its data is copied out of the stream.
    func queueFile(
        _ h: TarHeader, _ tar: TarReader, _ sink: PooledFileSink, in pfd: Int32, _ ppath: [UInt8],
        name: [UInt8], key: [UInt8], madeInLayer: Bool, shown: String
    ) throws {
        if madeInLayer || !sink.isFresh(ppath) {
            var st = stat()
            if withCName(name, { fstatat(pfd, $0, &st, AT_SYMLINK_NOFOLLOW) }) == 0 {
                _ = try replaceExisting(in: pfd, name: name, newIsDirectory: false, shown: shown)
            } else if errno != ENOENT {
                // Unusual (a name too long, a locked directory): the single-threaded path reports it.
                try writeFile(h, tar, in: pfd, name: name, shown: shown)
                return
            }
        }
        guard let dir = try sink.directory(pfd, ppath, drain: drainWriters) else {
            // Out of descriptors even after draining: this file is written here, without a job.
            try writeFile(h, tar, in: pfd, name: name, shown: shown)
            return
        }
        let perm = filePermissions(h)
        try sink.submit(h, tar, in: dir, name: name, key: key, shown: shown, perm: perm, needsChmod: perm & ~umask != perm)
    }

    func makeDirectory(_ h: TarHeader, in pfd: Int32, name: [UInt8], key: [UInt8], shown: String) throws {
        // Created u+rwx so the rest of the layer can go in; the final mode is applied afterwards.
        var r = createRetrying(pfd) { withCName(name) { mkdirat(pfd, $0, 0o700) } }
        if r != 0 && errno == EEXIST {
            if try !replaceExisting(in: pfd, name: name, newIsDirectory: true, shown: shown) {
                r = createRetrying(pfd) { withCName(name) { mkdirat(pfd, $0, 0o700) } }
                if r != 0 { throw ioError("mkdir", shown) }
                sink?.markFresh(key)
            }
        } else if r != 0 {
            throw ioError("mkdir", shown)
        } else {
            sink?.markFresh(key)
        }
        if 0o700 & ~umask != 0o700 { _ = withCName(name) { cl_fchmodat_nofollow(pfd, $0, 0o700) } }
        if directoryMeta[key] == nil { directoryOrder.append(key) }
        directoryMeta[key] = (directoryPermissions(h), h.mtime, h.mtimeNanoseconds)
    }

    /// A file's mode: the archive's rwx bits minus the umask, plus u+rw; setuid/setgid dropped
    /// (udocker's tar for a user does the same).
    private func filePermissions(_ h: TarHeader) -> mode_t { (mode_t(h.mode & 0o777) & ~modeMask) | 0o600 }

    /// A directory's mode: rwx bits minus the umask, plus u+rwx, and the sticky bit kept (an image's
    /// `/tmp` 1777 becomes 1755 under umask 022, never a world-writable directory without it).
    /// GNU tar as used by udocker drops the sticky bit (0755): same access for others, and with
    /// a permissive umask (002, 000) a group- or world-writable directory stays sticky here.
    private func directoryPermissions(_ h: TarHeader) -> mode_t {
        (mode_t(h.mode & 0o777) & ~modeMask) | 0o700 | mode_t(h.mode & 0o1000)
    }

    func makeSymlink(_ h: TarHeader, in pfd: Int32, name: [UInt8], shown: String) throws {
        guard !h.linkName.isEmpty else {
            throw ArchiveError(.invalidEntry, "symlink '\(shown)' has an empty target")
        }
        var r = createRetrying(pfd) { withCName(h.linkName) { target in withCName(name) { symlinkat(target, pfd, $0) } } }
        if r != 0 && errno == EEXIST {
            _ = try replaceExisting(in: pfd, name: name, newIsDirectory: false, shown: shown)
            r = createRetrying(pfd) { withCName(h.linkName) { target in withCName(name) { symlinkat(target, pfd, $0) } } }
        }
        if r != 0 { throw ioError("symlink", shown) }
        _ = withCName(name) { cl_set_mtime(pfd, $0, h.mtime, h.mtimeNanoseconds, 1) }
    }

    func makeHardlink(_ h: TarHeader, in pfd: Int32, name: [UInt8], key: [UInt8], shown: String) throws {
        let target = printable(h.linkName)
        let (tcomps, _) = LayerExtractor.clean(h.linkName)
        guard let tname = tcomps.last else {
            throw ArchiveError(.invalidEntry, "hardlink '\(shown)' points at the root directory")
        }
        // The target's directory is resolved inside the root; its final component is never
        // followed (linkat without AT_SYMLINK_FOLLOW links a symlink itself).
        guard let (tfd, tpath) = try resolver.directory(Array(tcomps.dropLast()), create: false) else {
            throw ArchiveError(.invalidEntry, "hardlink '\(shown)': target '\(target)' not found in the layer root")
        }
        if RootResolver.join(tpath, tname) == key { return }
        if sink?.isPending(RootResolver.join(tpath, tname)) == true { try drainWriters() }
        var retried = false
        while true {
            let r = createRetrying(pfd) { withCName(tname) { t in withCName(name) { linkat(tfd, t, pfd, $0, 0) } } }
            if r == 0 { return }
            let e = errno
            switch e {
            case EINTR:
                continue
            case EEXIST where !retried:
                retried = true
                var a = stat(), b = stat()
                if withCName(tname, { fstatat(tfd, $0, &a, AT_SYMLINK_NOFOLLOW) }) == 0,
                    withCName(name, { fstatat(pfd, $0, &b, AT_SYMLINK_NOFOLLOW) }) == 0,
                    a.st_dev == b.st_dev, a.st_ino == b.st_ino
                {
                    return  // already the same file
                }
                _ = try replaceExisting(in: pfd, name: name, newIsDirectory: false, shown: shown)
            case ENOENT:
                throw ArchiveError(.invalidEntry, "hardlink '\(shown)': target '\(target)' not found in the layer root")
            default:
                throw ArchiveError(SystemError("link '\(shown)' to", path: "'\(target)'", errno: e))
            }
        }
    }

    func makeNode(_ h: TarHeader, in pfd: Int32, name: [UInt8], shown: String, device: Bool) throws {
        let perm = filePermissions(h)
        func create() -> Int32 {
            withCName(name) { n in
                if device {
                    let type: mode_t = h.type == .blockDevice ? 0o060000 : 0o020000
                    return cl_mknodat(pfd, n, type | perm, UInt32(h.devMajor), UInt32(h.devMinor))
                }
                return cl_mkfifoat(pfd, n, perm)
            }
        }
        var r = createRetrying(pfd, create)
        if r != 0 && errno == EEXIST {
            _ = try replaceExisting(in: pfd, name: name, newIsDirectory: false, shown: shown)
            r = createRetrying(pfd, create)
        }
        if r != 0 {
            if device && (errno == EPERM || errno == EACCES) {
                extractor.record(warning: .deviceNodeSkipped(layer: layerName, entry: shown))
                return
            }
            throw ioError(device ? "mknod" : "mkfifo", shown)
        }
        if perm & ~umask != perm { _ = withCName(name) { cl_fchmodat_nofollow(pfd, $0, perm) } }
        _ = withCName(name) { cl_set_mtime(pfd, $0, h.mtime, h.mtimeNanoseconds, 1) }
    }
}
