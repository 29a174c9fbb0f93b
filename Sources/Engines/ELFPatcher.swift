import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif

/// One file's patch, as recorded in `containers/<id>/elf.patch.log` before the file is touched:
/// enough to undo it byte for byte (original size, and the original bytes of every overwritten
/// region) and to recognise the patched state.
struct ELFPatchRecord: Codable, Equatable, Sendable {
    struct Region: Codable, Equatable, Sendable {
        var offset: UInt64
        /// base64
        var original: String
        /// base64
        var patched: String
    }
    /// Container path (relative to ROOT, starting with "/").
    var path: String
    var originalSize: UInt64
    var patchedSize: UInt64
    /// Overwritten regions inside the original size.
    var regions: [Region]
    /// Data appended at `appendOffset` (base64), after zero padding from originalSize.
    var appendOffset: UInt64
    var appended: String
    var mtimeSeconds: Int
    var mtimeNanoseconds: Int
    var interpreter: String?
    var runpath: String?
    var newInterpreter: String?
    var newRunpath: String?
}

/// udocker's `patchelf --set-root-prefix` and `--restore-root-prefix`, done in Swift.
///
/// PT_INTERP and absolute DT_RUNPATH/DT_RPATH entries become `<prefix><original>`. The new strings
/// never fit in place, so they go into a small read-only PT_LOAD appended at the end of the file
/// (file offset congruent to its address, address above every other segment). The program header
/// slot comes from a PT_NOTE (ABI tag / build id, which nothing needs at run time; a note with GNU
/// properties is never used), so the header table keeps its size and place. The new PT_LOAD is
/// placed after the last PT_LOAD to keep them sorted. PT_INTERP (and the .interp section header)
/// point at the new string; DT_RUNPATH's value becomes the new string's distance from DT_STRTAB.
enum ELFPatcher {
    struct Failure: Error, CustomStringConvertible {
        var description: String
        init(_ d: String) { description = d }
    }

    /// The new strings for `prefix`: nil when there is nothing to do (no interpreter, not absolute,
    /// already prefixed, no absolute rpath entry).
    static func prefixed(_ s: String, prefix: String) -> String? {
        guard s.hasPrefix("/"), !s.hasPrefix(prefix + "/") else { return nil }
        return prefix + s
    }
    static func prefixedPath(_ list: String, prefix: String) -> String? {
        var changed = false
        let parts = list.split(separator: ":", omittingEmptySubsequences: false).map { part -> String in
            let s = String(part)
            if let p = prefixed(s, prefix: prefix) { changed = true; return p }
            return s
        }
        return changed ? parts.joined(separator: ":") : nil
    }
    static func unprefixed(_ s: String, prefix: String) -> String {
        s.hasPrefix(prefix + "/") ? String(s.dropFirst(prefix.count)) : s
    }

    /// Computes the patch of the file open (read-write) at `fd`; nil when nothing needs changing.
    static func plan(fd: Int32, containerPath: String, prefix: String) throws -> ELFPatchRecord? {
        guard let elf = try ELFFile(fd: fd) else { return nil }
        guard elf.type == ELFFile.ET_EXEC || elf.type == ELFFile.ET_DYN else { return nil }
        let interp = elf.interpreter
        let rp = elf.runpath
        let newInterp = interp.flatMap { prefixed($0, prefix: prefix) }
        let newRunpath = rp.flatMap { prefixedPath($0.value, prefix: prefix) }
        if newInterp == nil && newRunpath == nil { return nil }

        var phs = elf.programHeaders
        let loads = phs.filter { $0.type == ELFFile.PT_LOAD }
        guard !loads.isEmpty else { throw Failure("no PT_LOAD segment") }
        // The slot for the new PT_LOAD.
        guard let slot = phs.indices.first(where: { phs[$0].type == ELFFile.PT_NOTE && !elf.noteHoldsGNUProperty(phs[$0]) }) else {
            throw Failure("no spare program header (no PT_NOTE without GNU properties)")
        }
        var align: UInt64 = 0x1000
        for l in loads where l.align > align && l.align <= 0x10000 { align = l.align }
        // Hostile headers (addresses near 2^64) are refused, never an overflow trap.
        let ends = loads.map { $0.vaddr.addingReportingOverflow($0.memsz) }
        guard !ends.contains(where: \.overflow), let highest = ends.map(\.partialValue).max(),
            highest <= UInt64(1) << 56, elf.fileSize <= UInt64(1) << 56
        else { throw Failure("segment addresses out of range") }
        var data: [UInt8] = []
        var interpAt: UInt64 = 0, runpathAt: UInt64 = 0
        if let s = newInterp { interpAt = UInt64(data.count); data += Array(s.utf8) + [0] }
        if let s = newRunpath { runpathAt = UInt64(data.count); data += Array(s.utf8) + [0] }
        while data.count % 8 != 0 { data.append(0) }
        let originalSize = elf.fileSize
        let appendOffset = (originalSize + 15) / 16 * 16
        let vaddr = (highest + align - 1) / align * align + appendOffset % align
        let newLoad = ELFFile.ProgramHeader(
            type: ELFFile.PT_LOAD, flags: 4, offset: appendOffset, vaddr: vaddr, paddr: vaddr,
            filesz: UInt64(data.count), memsz: UInt64(data.count), align: align)
        phs.remove(at: slot)
        let lastLoad = phs.lastIndex(where: { $0.type == ELFFile.PT_LOAD })!
        phs.insert(newLoad, at: lastLoad + 1)
        var regions: [(UInt64, [UInt8])] = []
        if let _ = newInterp, let i = phs.firstIndex(where: { $0.type == ELFFile.PT_INTERP }) {
            let len = UInt64(newInterp!.utf8.count + 1)
            phs[i].offset = appendOffset + interpAt
            phs[i].vaddr = vaddr + interpAt
            phs[i].paddr = vaddr + interpAt
            phs[i].filesz = len
            phs[i].memsz = len
            if let sec = elf.section(named: ".interp"),
                let (at, bytes) = elf.encodeSection(sec, addr: vaddr + interpAt, offset: appendOffset + interpAt, size: len)
            {
                regions.append((at, bytes))
            }
        }
        var table: [UInt8] = []
        for p in phs { table += elf.encode(p) }
        regions.append((elf.phoff, table))
        if let rp, newRunpath != nil {
            guard let strtab = elf.dynamicEntries.first(where: { $0.tag == ELFFile.DT_STRTAB })?.value else {
                throw Failure("DT_RUNPATH without DT_STRTAB")
            }
            guard strtab <= vaddr + runpathAt else { throw Failure("DT_STRTAB beyond the appended segment") }
            regions.append((rp.entry.fileOffset + elf.valueOffsetInDynamic, elf.word(vaddr + runpathAt - strtab)))
        }
        var st = stat()
        fstat(fd, &st)
        var record = ELFPatchRecord(
            path: containerPath, originalSize: originalSize, patchedSize: appendOffset + UInt64(data.count),
            regions: [], appendOffset: appendOffset, appended: Data(data).base64EncodedString(),
            mtimeSeconds: st.st_mtim.tv_sec, mtimeNanoseconds: st.st_mtim.tv_nsec,
            interpreter: interp, runpath: rp?.value, newInterpreter: newInterp, newRunpath: newRunpath)
        for (at, bytes) in regions {
            guard let orig = elf.readBytes(at, bytes.count) else { throw Failure("region outside the file") }
            record.regions.append(.init(offset: at, original: Data(orig).base64EncodedString(), patched: Data(bytes).base64EncodedString()))
        }
        return record
    }

    static func writeAll(_ fd: Int32, _ bytes: [UInt8], at offset: UInt64) throws {
        var done = 0
        while done < bytes.count {
            let n = bytes[done...].withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(offset) + off_t(done)) }
            if n < 0 { if errno == EINTR { continue }; throw Failure("write: \(String(cString: strerror(errno)))") }
            done += n
        }
    }

    static func setTimes(_ fd: Int32, _ r: ELFPatchRecord) {
        var ts = [
            timespec(tv_sec: 0, tv_nsec: (1 << 30) - 2 /* UTIME_OMIT */), timespec(tv_sec: r.mtimeSeconds, tv_nsec: r.mtimeNanoseconds),
        ]
        _ = futimens(fd, &ts)
    }

    /// Applies a planned patch: appended data first, then the headers that point at it.
    static func apply(fd: Int32, _ r: ELFPatchRecord) throws {
        let appended = [UInt8](Data(base64Encoded: r.appended) ?? Data())
        let pad = [UInt8](repeating: 0, count: Int(r.appendOffset - r.originalSize))
        try writeAll(fd, pad + appended, at: r.originalSize)
        for region in r.regions.reversed() {
            try writeAll(fd, [UInt8](Data(base64Encoded: region.patched) ?? Data()), at: region.offset)
        }
        setTimes(fd, r)
    }

    enum RestoreOutcome: Equatable { case restored, alreadyOriginal, unrecognised }

    /// Undoes a patch, from the patched state or any partial state an interruption left.
    /// A file that is neither (replaced since) is left alone.
    static func restore(fd: Int32, _ r: ELFPatchRecord) throws -> RestoreOutcome {
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw Failure("fstat: \(String(cString: strerror(errno)))") }
        let size = UInt64(st.st_size)
        guard size >= r.originalSize, size <= r.patchedSize else { return .unrecognised }
        var allOriginal = size == r.originalSize
        for region in r.regions {
            let orig = [UInt8](Data(base64Encoded: region.original) ?? Data())
            let patched = [UInt8](Data(base64Encoded: region.patched) ?? Data())
            var cur = [UInt8](repeating: 0, count: orig.count)
            guard pread(fd, &cur, cur.count, off_t(region.offset)) == cur.count else { return .unrecognised }
            if cur == orig { continue }
            allOriginal = false
            if cur != patched { return .unrecognised }
        }
        if allOriginal { return .alreadyOriginal }
        for region in r.regions {
            try writeAll(fd, [UInt8](Data(base64Encoded: region.original) ?? Data()), at: region.offset)
        }
        if ftruncate(fd, off_t(r.originalSize)) != 0 { throw Failure("truncate: \(String(cString: strerror(errno)))") }
        setTimes(fd, r)
        return .restored
    }

    /// Opens a regular file owned by us for patching (no symlink followed), adding u+w for the
    /// duration when needed. Returns the fd and the mode to put back (nil if unchanged).
    static func openForPatch(_ path: String) throws -> (Int32, mode_t?) {
        var st = stat()
        guard lstat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { throw Failure("not a regular file") }
        guard st.st_uid == getuid() else { throw Failure("not owned by the user") }
        var restoreMode: mode_t? = nil
        if st.st_mode & 0o200 == 0 {
            guard chmod(path, (st.st_mode & 0o7777) | 0o200) == 0 else { throw Failure("chmod: \(String(cString: strerror(errno)))") }
            restoreMode = st.st_mode & 0o7777
        }
        let fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC)
        if fd < 0 {
            let e = errno
            if let m = restoreMode { chmod(path, m) }
            throw Failure("open: \(String(cString: strerror(e)))")
        }
        return (fd, restoreMode)
    }

    /// Sets the root prefix of one file (see the type's comment). Returns the record (after calling
    /// `journal` with it, before the first byte changes), or nil when nothing had to change.
    /// Re-reads the result to verify it.
    @discardableResult
    static func setRootPrefix(
        hostPath: String, containerPath: String, prefix: String,
        journal: (ELFPatchRecord) throws -> Void = { _ in }
    ) throws -> ELFPatchRecord? {
        let (fd, mode) = try openForPatch(hostPath)
        defer { close(fd); if let m = mode { chmod(hostPath, m) } }
        guard let r = try plan(fd: fd, containerPath: containerPath, prefix: prefix) else { return nil }
        try journal(r)
        try apply(fd: fd, r)
        guard let check = try ELFFile(fd: fd) else { throw Failure("not ELF after patching") }
        if let want = r.newInterpreter, check.interpreter != want {
            throw Failure("verification failed: interpreter is \(check.interpreter ?? "none")")
        }
        if let want = r.newRunpath, check.runpath?.value != want {
            throw Failure("verification failed: runpath is \(check.runpath?.value ?? "none")")
        }
        return r
    }

    /// Restores one file from its record.
    static func restoreFile(hostPath: String, _ r: ELFPatchRecord) throws -> RestoreOutcome {
        var st = stat()
        guard lstat(hostPath, &st) == 0 else { return .unrecognised }
        let (fd, mode) = try openForPatch(hostPath)
        defer { close(fd); if let m = mode { chmod(hostPath, m) } }
        return try restore(fd: fd, r)
    }

    /// The interpreter and runpath of a file (nil fields when absent or not ELF).
    static func inspect(_ path: String) -> (interpreter: String?, runpath: String?) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return (nil, nil) }
        defer { close(fd) }
        guard let e = try? ELFFile(fd: fd) else { return (nil, nil) }
        return (e.interpreter, e.runpath?.value)
    }
}
