import ContainerModel
import FoundationEssentials
import UDockerSystem
#if canImport(Glibc)
import Glibc
#endif

/// What a container copied from elsewhere (`import --clone`, `clone` of a container in a shared
/// repository) may bring along besides its ROOT. Everything in such a copy was written by someone
/// else, so nothing is taken as udocker's own state: `ROOT`, `container.json`, `imagerepo.name` and
/// a valid `execmode` are kept, and, for a Fakechroot mode only, the record of the old conversion
/// that the next run needs to re-target the clone to its new path (validated here, and resolved
/// inside ROOT again wherever it is used). Locks, overlay metadata (`lowers`, `upper`, `work`),
/// bind records, `libfakechroot.so`, conversion journals and anything unknown are dropped; the
/// container's state is rebuilt by the commands that need it.
enum CloneMetadata {
    /// Largest metadata file taken over (container.json, the ELF patch log, the original loader).
    static let maximumFileSize: Int64 = 64 << 20

    /// Moves what is kept from `source` (an extracted container directory) into `target` (the new
    /// container's staging directory, which has no ROOT yet) and returns warnings.
    static func adopt(from source: String, into target: String, shown: String) throws -> [String] {
        var warnings: [String] = []
        guard isRealDirectory("\(source)/ROOT") else {
            throw StoreError("\(shown): not a container clone archive (no ROOT directory; use import --tocontainer for a root filesystem)")
        }
        try syscall("rename", path: "\(target)/ROOT") { rename("\(source)/ROOT", "\(target)/ROOT") }
        if regularFile("\(source)/container.json") != nil {
            try syscall("rename", path: "\(target)/container.json") { rename("\(source)/container.json", "\(target)/container.json") }
        }
        let repoName = textLine("\(source)/imagerepo.name").flatMap { $0.isEmpty || $0.count > 1024 ? nil : $0 }
        try ContainerMetadata.writeOrigin(image: repoName ?? "IMPORTED:unknown", config: nil, directory: target)
        guard let text = textLine("\(source)/execmode"), !text.isEmpty else { return warnings }
        // Exactly a mode name, as udocker writes it (no case folding for a file someone else wrote).
        guard let mode = ExecutionMode(rawValue: text) else {
            warnings.append("ignoring the invalid execution mode in \(shown): \(text.prefix(16))")
            return warnings
        }
        try ContainerMetadata.writeMode(mode, directory: target, root: nil)
        guard mode.isFakechroot else { return warnings }
        // The old conversion: paths are kept as strings (the old prefix to replace), the
        // loader's original bytes and the ELF patch log as data confined to ROOT when used.
        for name in ["root.path", "patch.path"] {
            if let p = textLine("\(source)/\(name)"), isCleanAbsolutePath(p) { try AtomicFile.write(p, to: "\(target)/\(name)") }
        }
        if let p = textLine("\(source)/ld.so.path"), isCleanAbsolutePath(p) { try AtomicFile.write(p, to: "\(target)/ld.so.path") }
        if let m = textLine("\(source)/fakechroot.mode"), ExecutionMode(rawValue: m)?.isFakechroot == true {
            try AtomicFile.write(m, to: "\(target)/fakechroot.mode")
        }
        for name in ["ld.so.orig", "elf.patch.log"] where regularFile("\(source)/\(name)") != nil {
            try syscall("rename", path: "\(target)/\(name)") { rename("\(source)/\(name)", "\(target)/\(name)") }
        }
        return warnings
    }

    /// An absolute path without `.`/`..` components, NULs or newlines.
    static func isCleanAbsolutePath(_ p: String) -> Bool {
        guard p.hasPrefix("/"), p.count <= 4096, !p.contains("\0"), !p.contains(where: \.isNewline) else { return false }
        return !p.split(separator: "/", omittingEmptySubsequences: false).dropFirst().contains { $0 == "." || $0 == ".." }
    }

    static func isRealDirectory(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0 && st.st_mode & S_IFMT == S_IFDIR
    }

    /// Size of a regular file (never a symlink) no larger than `maximumFileSize`.
    static func regularFile(_ path: String) -> Int64? {
        var st = stat()
        guard lstat(path, &st) == 0, st.st_mode & S_IFMT == S_IFREG, Int64(st.st_size) <= maximumFileSize else { return nil }
        return Int64(st.st_size)
    }

    /// The first line of a small regular file, trimmed; nil if not one.
    static func textLine(_ path: String) -> String? {
        guard let size = regularFile(path), size <= 8192, let s = AtomicFile.readString(path) else { return nil }
        let line = s.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
        let t = line.trimmed(where: \.isBlank)
        return t.contains("\0") || t.unicodeScalars.contains { $0.value < 0x20 } ? nil : t
    }
}
