import OCI
import UDockerSystem
#if canImport(Glibc)
import Glibc
#endif

/// The SHA-256 of every engine tool `udocker install` put into the repository's bin/ and lib/,
/// kept beside them (`<dir>/.udocker-tools.sha256`, lines `<hex>  <name>`) and checked before a
/// tool is executed or preloaded. A verified file is remembered by (dev, inode, size, mtime,
/// ctime) in `<dir>/.udocker-tools.verified`, so `run` hashes a tool once after install, not at
/// every start: any write to the file changes its ctime, which no user can set back.
/// Tools in a directory without a record (the host PATH, a `UDOCKER_USE_*` file elsewhere, tools
/// installed before the record existed) are not hashed.
public enum ToolChecksums {
    public static let recordName = ".udocker-tools.sha256"
    public static let cacheName = ".udocker-tools.verified"

    /// Writes the record of `directory` for the files `names` in it (symlinks to siblings are
    /// hashed through).
    public static func record(_ names: [String], in directory: String) throws {
        var lines: [String] = []
        for name in names.sorted() where !name.contains("/") {
            let path = directory + "/" + name
            guard FileInfo.isRegularFile(path) else { continue }
            lines.append("\(try LocalRepository.sha256(ofFile: path).hex)  \(name)")
        }
        unlink("\(directory)/\(cacheName)")
        try AtomicFile.write(lines.joined(separator: "\n") + "\n", to: "\(directory)/\(recordName)", mode: 0o644)
    }

    /// The recorded hashes of `directory`, name → hex.
    static func recorded(in directory: String) -> [String: String] {
        guard let text = AtomicFile.readString("\(directory)/\(recordName)") else { return [:] }
        var out: [String: String] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ", omittingEmptySubsequences: true)
            guard parts.count == 2, parts[0].count == 64 else { continue }
            out[String(parts[1])] = String(parts[0])
        }
        return out
    }

    /// Checks the tool at `path` against the record of its directory. Returns the refusal line,
    /// or nil when it matches or its directory records nothing for it.
    public static func refusal(path: String) -> String? {
        guard let slash = path.lastIndex(of: "/") else { return nil }
        let directory = String(path[..<slash]), name = String(path[path.index(after: slash)...])
        guard let want = recorded(in: directory)[name] else { return nil }
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }  // the exec reports it missing
        let identity =
            "\(name) \(st.st_dev) \(st.st_ino) \(st.st_size) \(st.st_mtim.tv_sec).\(st.st_mtim.tv_nsec) \(st.st_ctim.tv_sec).\(st.st_ctim.tv_nsec) \(want)"
        let cachePath = "\(directory)/\(cacheName)"
        let cached = AtomicFile.readString(cachePath)?.split(separator: "\n").map(String.init) ?? []
        if cached.contains(identity) { return nil }
        guard let actual = try? LocalRepository.sha256(ofFile: path).hex else {
            return "\(path): cannot read it to check its SHA-256; run 'udocker install --force'"
        }
        guard actual == want else {
            return "\(path) changed since 'udocker install' (SHA-256 \(actual.prefix(12))…, installed \(want.prefix(12))…): "
                + "refusing to run it; run 'udocker install --force' to reinstall the tools"
        }
        let kept = cached.filter { !$0.hasPrefix(name + " ") }
        try? AtomicFile.write((kept + [identity]).joined(separator: "\n") + "\n", to: cachePath, mode: 0o644)
        return nil
    }
}
