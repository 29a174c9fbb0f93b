import FoundationEssentials
import UDockerSystem
#if canImport(Glibc)
import Glibc
#endif

public struct PruneReport: Sendable {
    public var removedLayers: [String] = []
    public var removedLeftovers: [String] = []
    public var freedBytes: Int64 = 0
    /// Unreferenced blobs younger than the grace period (a pull may be about to tag them).
    public var keptRecent: [String] = []
    /// Extracted layers in `layers/cache/` that no overlay container uses (and abandoned stagings).
    public var removedCachedLayers: [String] = []
}

extension LocalRepository {
    /// `rmi --prune`: removes what no tag and no running operation needs:
    ///
    /// * files in `layers/` that no tag links to (older than `grace` seconds: a concurrent `pull`
    ///   stores its blobs before it publishes the tag);
    /// * leftovers of interrupted operations: staging dot-directories (`layers/.loading-*`,
    ///   `layers/.importing-*`, `containers/.creating-*`, `containers/.deleting-*`,
    ///   `repos/…/.<tag>.new-*` / `.old-*`) whose owner is gone, and abandoned `*.partial` downloads;
    /// * container aliases whose container no longer exists;
    /// * extracted layers in the layer cache that no overlay container uses.
    ///
    /// Runs under the exclusive repository lock, which every writer of tags and containers takes, and
    /// skips staging directories whose `.lock` is still held.
    public func prune(grace: TimeInterval = 600, dryRun: Bool = false) throws -> PruneReport {
        var report = PruneReport()
        try withLock(cleaning: false) {
            let used = referencedLayerFiles()
            let now = Date().timeIntervalSince1970
            func remove(_ path: String, leftover: Bool) {
                let size = FileInfo.isDirectory(path) ? 0 : (FileInfo.size(path) ?? 0)
                if !dryRun {
                    do { try FileTree.remove(path) } catch { return }
                }
                if leftover { report.removedLeftovers.append(path) } else { report.removedLayers.append(path); report.freedBytes += size }
            }
            for name in FileInfo.list(layersDirectory).sorted() {
                let p = "\(layersDirectory)/\(name)"
                if name.hasPrefix(".") {
                    if FileInfo.isDirectory(p), !FileInfo.isSymlink(p), Self.stagingIsAbandoned(p) { remove(p, leftover: true) }
                    if Self.temporaryIsAbandoned(p, name: name, now: now, grace: grace) { remove(p, leftover: true) }
                    if BlobIngest.isScratch(name), FileInfo.isRegularFile(p) {
                        var st = stat()
                        if lstat(p, &st) == 0, now - TimeInterval(st.st_mtim.tv_sec) >= grace { remove(p, leftover: true) }
                    }
                    continue
                }
                if BlobIngest.isPartial(name) {
                    if BlobIngest.partialIsAbandoned(p) { remove(p, leftover: true) }
                    continue
                }
                guard !used.contains(name), !FileInfo.isDirectory(p) else { continue }
                var st = stat()
                if lstat(p, &st) == 0, now - TimeInterval(st.st_mtim.tv_sec) < grace, grace > 0 {
                    report.keptRecent.append(p)
                    continue
                }
                remove(p, leftover: false)
            }
            for name in FileInfo.list(containersDirectory).sorted() {
                let p = "\(containersDirectory)/\(name)"
                if FileInfo.isSymlink(p) {
                    if containerID(name) == nil { remove(p, leftover: true) }
                    continue
                }
                if StagingDirectory.containerPrefixes.contains(where: name.hasPrefix), FileInfo.isDirectory(p), Self.stagingIsAbandoned(p) {
                    remove(p, leftover: true)
                }
            }
            func walkRepos(_ dir: String) {
                for name in FileInfo.list(dir).sorted() {
                    let p = "\(dir)/\(name)"
                    guard FileInfo.isDirectory(p), !FileInfo.isSymlink(p) else { continue }
                    if name.hasPrefix(".") {
                        if name.contains(".new-") || name.contains(".old-") { remove(p, leftover: true) }
                        continue
                    }
                    if !FileInfo.isRegularFile("\(p)/TAG") { walkRepos(p) }
                }
            }
            walkRepos(reposDirectory)
            if dryRun {
                report.removedCachedLayers = unusedCacheEntries()
            } else {
                report.removedCachedLayers = try pruneLayerCacheLocked()
            }
        }
        return report
    }

    /// A temporary of `AtomicFile.write` (`.<name>.tmp-<pid>-<n>`, a regular file) left by a killed
    /// writer: older than `grace`, and at least a minute even for `-f` (a live write takes
    /// milliseconds), and its writer no longer runs here.
    static func temporaryIsAbandoned(_ path: String, name: String, now: TimeInterval, grace: TimeInterval) -> Bool {
        guard let pid = AtomicFile.temporaryWriter(ofName: name) else { return false }
        var st = stat()
        guard lstat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG,
            now - TimeInterval(st.st_mtim.tv_sec) >= max(grace, 60)
        else { return false }
        return kill(pid, 0) != 0 && errno == ESRCH
    }

    /// A staging directory is abandoned when nobody holds its `.lock` (ours) — directories of
    /// `create`/`rm` have none, but those run under the repository lock that prune holds.
    static func stagingIsAbandoned(_ dir: String) -> Bool {
        let lockPath = "\(dir)/.lock"
        guard FileInfo.exists(lockPath) else { return true }
        guard let l = try? FileLock.tryLock(path: lockPath, kind: .exclusive) else { return false }
        l.unlock()
        return true
    }

    // MARK: - setup --purge / --fixperm

    /// `setup --purge`: removes what execution modes leave in a container: mount point records
    /// (`.mountpoints/`) and the empty files/directories they created in ROOT, file-bind copies
    /// (`.bind_orig_files/`, restored into ROOT first) and `ROOT/.bind_host_files`. Returns what
    /// was done, one line each.
    public func purgeContainer(_ id: String) throws -> [String] {
        let dir = containerDirectory(id)
        let root = try RootDirectory(path: "\(dir)/ROOT")
        var done: [String] = []
        let mp = "\(dir)/.mountpoints"
        let orig = "\(dir)/.bind_orig_files"
        // Records are only read from real directories of the container: a symlink in their place
        // (a copied container) would make host entries look like saved originals.
        for record in [mp, orig] where FileInfo.isSymlink(record) {
            unlink(record)
            done.append("removed \(PathName.lastComponent(record)) (a symlink, not a record directory)")
        }
        for name in FileInfo.list(mp).sorted() {
            // name = container path with '/' → '#'; target = the deepest path that already
            // existed, with '#' for '/' (udocker's records and the runs' own) or with '/'.
            let cpath = PathName.normalize(name.replacing("#", with: "/"))
            let existed = (FileInfo.readLink("\(mp)/\(name)") ?? "/").replacing("#", with: "/")
            guard let created = Self.firstCreatedComponent(cpath, existed: existed) else { continue }
            // As udocker: the mount point, then each directory made for it up to the first one,
            // each only while it is an empty directory or an empty regular file.
            let parts = PathName.components(cpath)
            var removed: String?
            for n in stride(from: parts.count, through: PathName.components(created).count, by: -1) {
                let path = "/" + parts.prefix(n).joined(separator: "/")
                guard let host = root.hostPath(path, followFinal: false), !FileInfo.isSymlink(host),
                    rmdir(host) == 0 || (FileInfo.isRegularFile(host) && (FileInfo.size(host) ?? 1) == 0 && unlink(host) == 0)
                else { break }
                removed = path
            }
            if removed != nil { done.append("removed mount point \(cpath)") }
        }
        if FileInfo.exists(mp) { try FileTree.remove(mp); done.append("removed .mountpoints") }
        for name in FileInfo.list(orig).sorted() {
            let cpath = name.replacing("#", with: "/")
            if let host = root.hostPath(cpath, followFinal: false) {
                if FileInfo.isSymlink(host) { unlink(host) }
                if !FileInfo.exists(host), rename("\(orig)/\(name)", host) == 0 { done.append("restored \(cpath)") }
            }
        }
        if FileInfo.exists(orig) { try FileTree.remove(orig); done.append("removed .bind_orig_files") }
        let hostFiles = "\(dir)/ROOT/.bind_host_files"
        if FileInfo.isDirectory(hostFiles), !FileInfo.isSymlink(hostFiles) {
            try FileTree.remove(hostFiles); done.append("removed ROOT/.bind_host_files")
        }
        return done
    }

    /// `/a/b/c` with `/a` existing → `/a/b`.
    static func firstCreatedComponent(_ path: String, existed: String) -> String? {
        let p = PathName.components(path)
        let e = PathName.components(existed)
        guard p.count > e.count, Array(p.prefix(e.count)) == e else { return nil }
        return "/" + p.prefix(e.count + 1).joined(separator: "/")
    }

    /// `setup --fixperm`: gives the owner read and write on every file and read, write and search
    /// on every directory below ROOT (never following symlinks), so a container whose files
    /// came without owner permissions can be run, copied and removed. Returns the number of
    /// entries changed and the paths that could not be changed (not owned by the user).
    public func fixPermissions(_ id: String) throws -> (changed: Int, failed: [String]) {
        let root = containerRoot(id)
        let fd = try syscall("open", path: root) { open(root, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) }
        defer { close(fd) }
        var changed = 0
        var failed: [String] = []
        var st = stat()
        if fstat(fd, &st) == 0, st.st_mode & 0o700 != 0o700 {
            if fchmod(fd, (st.st_mode & 0o7777) | 0o700) == 0 { changed += 1 } else { failed.append("/") }
        }
        func walk(_ dfd: Int32, _ rel: String) {
            guard let entries = try? FileTree.list(dfd) else { failed.append(rel.isEmpty ? "/" : rel); return }
            for e in entries {
                let shown = rel + "/" + String(decoding: e.name, as: UTF8.self)
                var st = stat()
                guard withCName(e.name, { fstatat(dfd, $0, &st, AT_SYMLINK_NOFOLLOW) }) == 0 else { continue }
                let type = st.st_mode & S_IFMT
                if type == S_IFLNK { continue }
                let want: mode_t = type == S_IFDIR ? 0o700 : 0o600
                if st.st_mode & want != want {
                    if withCName(e.name, { fchmodat(dfd, $0, (st.st_mode & 0o7777) | want, 0) }) == 0 {
                        changed += 1
                    } else {
                        failed.append(shown)
                    }
                }
                if type == S_IFDIR {
                    let cfd = withCName(e.name) { openat(dfd, $0, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) }
                    guard cfd >= 0 else { failed.append(shown); continue }
                    walk(cfd, shown)
                    close(cfd)
                }
            }
        }
        walk(fd, "")
        return (changed, failed)
    }
}
