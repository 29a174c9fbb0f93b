import ContainerModel
import FoundationEssentials
import UDockerSystem
#if canImport(Glibc)
import Glibc
#endif

/// The container changes the Fakechroot modes need (udocker `execmode.set_mode`, `elfpatcher.py`),
/// and their undoing:
/// * F1-F4: absolute symlinks in ROOT re-pointed into ROOT (`links_conv`), `ld.lib.dirs`;
/// * F2-F4: the container's loader binary-patched (`ld.so.orig` keeps the original);
/// * F3/F4: PT_INTERP and DT_RUNPATH/DT_RPATH of every user-owned ELF executable and `lib*.so*`
///   prefixed with ROOT (`elf.patch.log` keeps, per file, what restores it byte for byte).
///
/// Interruption-safe: `.conversion` (the target mode) is written before anything changes and
/// removed last; every step is idempotent, so whoever finds the journal (the next `setup` or
/// Fakechroot `run`) finishes the conversion. The binary step is redone from scratch (undo the
/// log, then patch) so a file interrupted half-way is never taken for an original.
public enum FakechrootSetup {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
        init(_ d: String) { description = d }
    }

    /// The files in `containers/<id>`.
    struct Paths {
        let directory: String
        let root: String
        var journal: String { directory + "/.conversion" }
        var lock: String { directory + "/.fakechroot.lock" }
        var state: String { directory + "/fakechroot.mode" }
        var ldPath: String { directory + "/ld.so.path" }
        var ldOrig: String { directory + "/ld.so.orig" }
        var libDirs: String { directory + "/ld.lib.dirs" }
        var patchTime: String { directory + "/patch.time" }
        var patchPath: String { directory + "/patch.path" }
        var rootPath: String { directory + "/root.path" }
        var elfLog: String { directory + "/elf.patch.log" }

        init(directory: String, root: String) {
            self.directory = directory
            // FAKECHROOT_BASE and the prefix are the real path (symlinked $HOME etc.).
            if let r = realpath(root, nil) { self.root = String(cString: r); free(r) } else { self.root = root }
        }
    }

    static func read(_ path: String) -> String? {
        AtomicFile.readString(path)?.trimmed()
    }

    /// The mode the container's files are currently converted for (nil: none, i.e. P/N/R/S).
    public static func convertedMode(directory: String) -> ExecutionMode? {
        read(directory + "/fakechroot.mode").flatMap(ExecutionMode.init(rawValue:))
    }

    /// Whether a conversion was interrupted (its journal is still there).
    public static func isInterrupted(directory: String) -> Bool { FileInfo.exists(directory + "/.conversion") }

    /// Brings the container's files to what `target` needs; `setMode` records the mode (execmode).
    /// Going to an F mode, execmode is switched first (so the next run goes through the Fakechroot
    /// engine, which finishes an interrupted conversion); leaving F, it is switched last.
    public static func convert(
        directory: String, root: String, to target: ExecutionMode, force: Bool = false,
        log: (String) -> Void = { _ in }, setMode: (ExecutionMode) throws -> Void
    ) throws {
        let p = Paths(directory: directory, root: root)
        try FileLock.withLock(p.lock) {
            try convertLocked(p, to: target, force: force, log: log, setMode: setMode)
        }
    }

    /// Finishes an interrupted conversion, if any; returns the mode it ended in.
    @discardableResult
    public static func recover(
        directory: String, root: String, log: (String) -> Void = { _ in },
        setMode: (ExecutionMode) throws -> Void
    ) throws -> ExecutionMode? {
        let p = Paths(directory: directory, root: root)
        return try FileLock.withLock(p.lock) { () throws -> ExecutionMode? in
            guard let t = read(p.journal).flatMap(ExecutionMode.init(rawValue:)) else { return nil }
            log("finishing the interrupted conversion to \(t.rawValue)")
            try convertLocked(p, to: t, force: false, log: log, setMode: setMode)
            return t
        }
    }

    /// Whether the container must be (re)converted before running in `mode`: never set up for it,
    /// an interrupted conversion, or moved since it was patched.
    static func needsConversion(_ p: Paths, for mode: ExecutionMode) -> Bool {
        if FileInfo.exists(p.journal) { return true }
        guard convertedMode(directory: p.directory) == mode else { return true }
        return !previousRoots(p).isEmpty
    }

    /// ROOT paths the container was converted at before, other than its current one: `patch.path`
    /// (ours: the ROOT; Python udocker's: the container directory) and `root.path` (udocker's
    /// record of the ROOT at the last mode change). A clone or a moved repository has them.
    static func previousRoots(_ p: Paths) -> [String] {
        var candidates: [String] = []
        if let v = read(p.patchPath), v != p.root { candidates += [v, v + "/ROOT"] }
        if let v = read(p.rootPath) { candidates.append(v) }
        var out: [String] = []
        for r in candidates where r.hasPrefix("/") && r != "/" && r != p.root && !p.root.hasPrefix(r + "/") && !out.contains(r) {
            out.append(r)
        }
        return out.sorted { $0.count > $1.count }
    }

    static func convertLocked(
        _ p: Paths, to target: ExecutionMode, force: Bool, log: (String) -> Void,
        setMode: (ExecutionMode) throws -> Void
    ) throws {
        let current = convertedMode(directory: p.directory)
        let interrupted = FileInfo.exists(p.journal)
        let isF = [.F1, .F2, .F3, .F4].contains(target)
        if !interrupted && !force && current == target && !(isF && needsConversion(p, for: target)) {
            try setMode(target)
            return
        }
        if !interrupted && current == nil && !isF {
            try setMode(target)  // nothing of ours to undo
            return
        }
        // The prefixes the container was patched/converted with (moved or cloned containers), read
        // before `setMode` records the current ROOT.
        let oldRoots = previousRoots(p)
        try AtomicFile.write(target.rawValue, to: p.journal)
        if isF { try setMode(target) }

        // 1. Binaries: always undo what the log records (also the partial work of an interruption).
        try restoreBinaries(p, log: log)
        // 2. Loader.
        if ![.F2, .F3, .F4].contains(target) { try restoreLoader(p) }
        // 3. Symlinks.
        let scan = try scanTree(p.root, wantELF: target == .F3 || target == .F4)
        try convertLinks(scan.absoluteLinks, root: p.root, oldRoots: oldRoots, toContainer: isF)
        if isF {
            try AtomicFile.write(scan.libraryDirectories.joined(separator: ":"), to: p.libDirs)
            if let loader = findLoader(root: p.root) { try AtomicFile.write(loader, to: p.ldPath) }
        }
        // 4. Loader patch.
        let hasLoader = [.F2, .F3, .F4].contains(target) ? try patchLoader(p, log: log) : true
        // 5. Binaries.
        if target == .F3 || target == .F4 {
            if hasLoader { try patchBinaries(p, files: scan.elfCandidates, log: log) }
            try AtomicFile.write(String(Int(Date().timeIntervalSince1970)), to: p.patchTime)
            try AtomicFile.write(p.root, to: p.patchPath)
        } else {
            unlink(p.patchTime); unlink(p.patchPath)
        }
        if isF {
            try AtomicFile.write(target.rawValue, to: p.state)
        } else {
            unlink(p.state); unlink(p.libDirs)
        }
        try setMode(target)
        unlink(p.journal)
    }

    // MARK: tree scan

    struct Scan {
        /// (host path, target) of symlinks with an absolute target.
        var absoluteLinks: [(String, String)] = []
        /// Host paths of user-owned regular files that may be ELF executables or libraries.
        var elfCandidates: [String] = []
        /// Container paths of directories holding `lib*.so*`.
        var libraryDirectories: [String] = []
    }

    static func isLibraryName(_ name: String) -> Bool {
        name.hasPrefix("lib") && (name.hasSuffix(".so") || name.contains(".so."))
    }

    /// Walks ROOT without following symlinks.
    static func scanTree(_ root: String, wantELF: Bool) throws -> Scan {
        var scan = Scan()
        var libDirs: [String] = []
        var seenLibDir = Set<String>()
        let uid = getuid()
        var stack = [root]
        while let dir = stack.popLast() {
            guard let d = opendir(dir) else { continue }
            defer { closedir(d) }
            while let e = readdir(d) {
                let name = withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
                if name == "." || name == ".." { continue }
                let path = dir + "/" + name
                var st = stat()
                guard lstat(path, &st) == 0 else { continue }
                switch st.st_mode & S_IFMT {
                case S_IFDIR:
                    stack.append(path)
                case S_IFLNK:
                    if st.st_uid == uid, let t = FileInfo.readLink(path), t.hasPrefix("/") { scan.absoluteLinks.append((path, t)) }
                    if isLibraryName(name) {
                        let c = String(dir.dropFirst(root.count)); let cd = c.isEmpty ? "/" : c
                        if seenLibDir.insert(cd).inserted { libDirs.append(cd) }
                    }
                case S_IFREG:
                    let lib = isLibraryName(name)
                    if lib {
                        let c = String(dir.dropFirst(root.count)); let cd = c.isEmpty ? "/" : c
                        if seenLibDir.insert(cd).inserted { libDirs.append(cd) }
                    }
                    if wantELF && st.st_uid == uid && (lib || st.st_mode & 0o111 != 0) && st.st_size >= 52 {
                        scan.elfCandidates.append(path)
                    }
                default: break
                }
            }
        }
        scan.libraryDirectories = libDirs.sorted()
        scan.elfCandidates.sort()
        return scan
    }

    // MARK: links_conv

    /// To the container: `/x` → `<root>/x` (and `<oldRoot>/x` → `<root>/x`). Back: the prefix removed.
    static func convertLinks(_ links: [(String, String)], root: String, oldRoots: [String], toContainer: Bool) throws {
        for (path, target) in links {
            var base = target
            for prefix in [root] + oldRoots where !prefix.isEmpty && prefix != "/" {
                if base.hasPrefix(prefix + "/") { base = String(base.dropFirst(prefix.count)); break }
                if base == prefix { base = "/"; break }
            }
            let wanted = toContainer ? root + (base == "/" ? "" : base) : base
            if wanted == target { continue }
            let tmp = path + ".udocker-link-\(getpid())"
            unlink(tmp)
            guard symlink(wanted, tmp) == 0 else {
                throw Failure("cannot convert the symlink \(path): \(String(cString: strerror(errno)))")
            }
            guard rename(tmp, path) == 0 else {
                let e = errno; unlink(tmp)
                throw Failure("cannot convert the symlink \(path): \(String(cString: strerror(e)))")
            }
        }
    }

    // MARK: loader

    /// Host path of a container path: resolved inside ROOT (links as in the image), else through
    /// converted links (which point at `<root>/...`), never outside ROOT.
    static func hostPath(_ containerPath: String, root: String) -> String? {
        if let r = try? RootDirectory(path: root).resolve(containerPath), r.exists, !r.inVolume { return r.hostPath }
        guard let real = realpath(root + containerPath, nil) else { return nil }
        defer { free(real) }
        let s = String(cString: real)
        return s.hasPrefix(root + "/") ? s : nil
    }

    /// The container's loader (container path as its binaries name it): the interpreter of a
    /// well-known dynamic executable.
    static func findLoader(root: String) -> String? {
        for exe in ["/bin/sh", "/usr/bin/env", "/bin/bash", "/usr/bin/ls", "/bin/ls", "/bin/busybox"] {
            guard let h = hostPath(exe, root: root) else { continue }
            if let i = ELFPatcher.inspect(h).interpreter {
                let orig = read(root + "/../patch.path").map { ELFPatcher.unprefixed(i, prefix: $0) } ?? i
                return ELFPatcher.unprefixed(orig, prefix: root)
            }
        }
        for c in [
            "/lib64/ld-linux-x86-64.so.2", "/lib/ld-linux-aarch64.so.1", "/lib/ld-linux-armhf.so.3",
            "/lib/ld-linux.so.2", "/lib/ld64.so.2", "/lib/ld-musl-x86_64.so.1", "/lib/ld-musl-aarch64.so.1",
        ]
        where hostPath(c, root: root) != nil {
            return c
        }
        return nil
    }

    /// udocker `patch_ld`: length-preserving replacements that disable ld.so.cache, ld.so.preload
    /// and the default library directories, and rename LD_LIBRARY_PATH to LD_LIBRARY_REAL.
    static func patchedLoaderBytes(_ original: [UInt8]) -> [UInt8] {
        func nuls(_ n: Int) -> [UInt8] { [UInt8](repeating: 0, count: n) }
        let rules: [([UInt8], [UInt8])] = [
            (Array("\0/etc/ld.so".utf8), [0, UInt8(ascii: "/")] + nuls(9)),
            (Array("\0/lib".utf8), [0, UInt8(ascii: "/")] + nuls(3)),
            (Array("\0/usr".utf8), [0, UInt8(ascii: "/")] + nuls(3)),
            (Array("\0LD_LIBRARY_PATH\0".utf8), Array("\0LD_LIBRARY_REAL\0".utf8)),
        ]
        var b = original
        for (from, to) in rules { replaceAll(&b, from, to) }
        return b
    }

    static func replaceAll(_ b: inout [UInt8], _ from: [UInt8], _ to: [UInt8]) {
        precondition(from.count == to.count)
        guard b.count >= from.count else { return }
        var i = 0
        let first = from[0]
        while i <= b.count - from.count {
            if b[i] == first && b[i + 1] == from[1] && Array(b[i..<(i + from.count)]) == from {
                b.replaceSubrange(i..<(i + from.count), with: to)
                i += from.count - 1  // the last byte of a match may start the next (a NUL)
            } else {
                i += 1
            }
        }
    }

    /// Replaces a file's content atomically (temp file in the same directory, same mode).
    static func replaceFile(_ path: String, with bytes: [UInt8]) throws {
        var st = stat()
        guard lstat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { throw Failure("not a regular file: \(path)") }
        let tmp = path + ".udocker-\(getpid())"
        unlink(tmp)
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, st.st_mode & 0o7777)
        guard fd >= 0 else { throw Failure("cannot write \(tmp): \(String(cString: strerror(errno)))") }
        do {
            try ELFPatcher.writeAll(fd, bytes, at: 0)
            fchmod(fd, st.st_mode & 0o7777)
            var ts = [st.st_atim, st.st_mtim]
            futimens(fd, &ts)
            close(fd)
        } catch { close(fd); unlink(tmp); throw Failure("cannot write \(tmp): \(error)") }
        guard rename(tmp, path) == 0 else { let e = errno; unlink(tmp); throw Failure("rename \(path): \(String(cString: strerror(e)))") }
    }

    static func loaderHostPath(_ p: Paths) throws -> String {
        guard let c = read(p.ldPath) ?? findLoader(root: p.root), let h = hostPath(c, root: p.root) else {
            throw Failure("cannot find the container's dynamic loader (ld.so) in \(p.root)")
        }
        return h
    }

    /// Patches the container's loader; an image without one (static binaries only, e.g. busybox)
    /// has nothing to patch, as in F1: said once, not an error.
    @discardableResult
    static func patchLoader(_ p: Paths, log: (String) -> Void = { _ in }) throws -> Bool {
        guard read(p.ldPath).flatMap({ hostPath($0, root: p.root) }) != nil || findLoader(root: p.root) != nil else {
            unlink(p.ldPath)
            log("no dynamic loader in the container (static executables): nothing to patch")
            return false
        }
        let ld = try loaderHostPath(p)
        try refuseNonRegular(p.ldOrig)
        if !FileInfo.exists(p.ldOrig) {
            guard let orig = AtomicFile.read(ld) else { throw Failure("cannot read the loader \(ld)") }
            try AtomicFile.write(orig, to: p.ldOrig, mode: 0o755)
        }
        guard let orig = AtomicFile.read(p.ldOrig) else { throw Failure("cannot read \(p.ldOrig)") }
        let patched = patchedLoaderBytes(orig)
        if AtomicFile.read(ld) != patched { try replaceFile(ld, with: patched) }
        return true
    }

    static func restoreLoader(_ p: Paths) throws {
        guard FileInfo.exists(p.ldOrig) else { return }
        try refuseNonRegular(p.ldOrig)
        guard let orig = AtomicFile.read(p.ldOrig) else { throw Failure("cannot read \(p.ldOrig)") }
        let ld = try loaderHostPath(p)
        if AtomicFile.read(ld) != orig { try replaceFile(ld, with: orig) }
        unlink(p.ldOrig)
    }

    /// Container metadata may come from a copied container: a file of ours that is not a
    /// regular file (a symlink to a host file, a FIFO) is refused, never followed.
    static func refuseNonRegular(_ path: String) throws {
        var st = stat()
        guard lstat(path, &st) == 0 else { return }
        guard st.st_mode & S_IFMT == S_IFREG else { throw Failure("invalid container metadata: \(path) is not a regular file") }
    }

    /// The host path of a patch-log record: a clean absolute container path whose directories
    /// resolve inside ROOT without a symlink (the final name itself is opened with O_NOFOLLOW).
    static func recordHostPath(_ containerPath: String, root: RootDirectory?, rootPath: String) -> String? {
        guard containerPath.hasPrefix("/"), !containerPath.contains("\0"),
            !containerPath.split(separator: "/", omittingEmptySubsequences: false).dropFirst().contains(where: {
                $0.isEmpty || $0 == "." || $0 == ".."
            }),
            let resolved = root?.hostPath(containerPath, followFinal: false),
            resolved == rootPath + containerPath
        else { return nil }
        return resolved
    }

    // MARK: binaries

    static func readLog(_ path: String) throws -> [ELFPatchRecord] {
        try refuseNonRegular(path)
        guard let text = AtomicFile.readString(path) else { return [] }
        let dec = JSONDecoder()
        return text.split(separator: "\n").compactMap { try? dec.decode(ELFPatchRecord.self, from: Data($0.utf8)) }
    }

    static func restoreBinaries(_ p: Paths, log: (String) -> Void) throws {
        let records = try readLog(p.elfLog)
        let rootDirectory = records.isEmpty ? nil : try? RootDirectory(path: p.root)
        var failures = 0
        for r in records.reversed() {
            guard let host = recordHostPath(r.path, root: rootDirectory, rootPath: p.root) else {
                log("not restoring \(r.path.prefix(200)): not a path inside the container")
                continue
            }
            do {
                if try ELFPatcher.restoreFile(hostPath: host, r) == .unrecognised {
                    log("not restoring \(r.path): it changed since it was patched")
                }
            } catch {
                failures += 1
                log("cannot restore \(r.path): \(error)")
            }
        }
        if failures > 0 { throw Failure("\(failures) file(s) could not be restored; see \(p.elfLog)") }
        unlink(p.elfLog)
    }

    static func patchBinaries(_ p: Paths, files: [String], log: (String) -> Void) throws {
        let fd = open(p.elfLog, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { throw Failure("cannot write \(p.elfLog): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        var seen = Set<[UInt64]>()
        var patched = 0
        for h in files {
            var st = stat()
            guard lstat(h, &st) == 0, seen.insert([UInt64(st.st_dev), UInt64(st.st_ino)]).inserted else { continue }
            let probe = open(h, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)
            guard probe >= 0 else { continue }
            let elf = ELFFile.hasMagic(fd: probe)
            close(probe)
            guard elf else { continue }
            let c = String(h.dropFirst(p.root.count))
            do {
                let r = try ELFPatcher.setRootPrefix(hostPath: h, containerPath: c, prefix: p.root) { record in
                    var line = try enc.encode(record)
                    line.append(0x0a)
                    try ELFPatcher.writeAll(fd, [UInt8](line), at: 0)  // O_APPEND: offset ignored
                }
                if r != nil { patched += 1 }
            } catch {
                // Static binaries and odd files are left as they are (udocker ignores patchelf errors).
                log("not patching \(c): \(error)")
            }
        }
        fsync(fd)
        log("patched \(patched) ELF file(s)")
    }
}
