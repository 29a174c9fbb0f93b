import Archive
import FoundationEssentials
import OCI
import UDockerSystem
#if canImport(Glibc)
import Glibc
#endif

/// udockertools (`udocker install`): the tarball's `udocker_dir/bin/*`, `lib/*` and `doc/*` go to
/// the repository's bin/, lib/ and doc/ by basename, as udocker's `tools.py` installs them.
/// The tarball is untrusted: only regular files and symlinks whose target is another plain name
/// in the same directory are taken; everything is staged first and renamed into place only when
/// the whole tarball read cleanly and its `lib/VERSION` is acceptable.
extension LocalRepository {
    /// The installed udockertools version (`lib/VERSION`), if any.
    public var toolsVersion: String? {
        AtomicFile.readString("\(libDirectory)/VERSION")?.trimmed()
    }

    /// `install --purge`: empties bin/, lib/ and doc/ (never following a symlink), but for an
    /// entry named `keeping` (an install's staging directory).
    public func purgeTools(keeping: String? = nil) throws {
        let kept = keeping.map { Array($0.utf8) }
        for dir in [binDirectory, libDirectory, docDirectory] where FileInfo.isDirectory(dir) {
            let fd = try syscall("open", path: dir) { open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
            defer { close(fd) }
            try FileTree.removeChildren(of: fd, keep: { $0 == kept })
        }
    }

    /// Installs the tarball at `path`; returns its version, the installed names (`bin/proot`…)
    /// and the SHA-256 (hex) of the tarball, which the caller shows: what was installed can
    /// always be checked afterwards. `sha256` (hex, optionally `sha256:`-prefixed) is checked
    /// first when given; a `VERSION` older than `minimumVersion` is refused unless `force`.
    /// The hash and the extraction read the same open file. `shownAs` names the tarball in
    /// errors (the URL a downloaded file came from). `purge`: bin/, lib/ and doc/ are emptied
    /// once the tarball is accepted, just before its files move in (a refused tarball purges nothing).
    public func installTools(
        tarball path: String, shownAs: String? = nil, sha256: String?, minimumVersion: String, force: Bool,
        purge: Bool = false
    ) throws -> (version: String, installed: [String], sha256: String) {
        let shown = shownAs ?? path
        let fd = try syscall("open", path: path) { open(path, O_RDONLY | O_CLOEXEC) }
        defer { close(fd) }
        let actual = try Self.sha256(of: fd, path: path).hex
        if let sha256 {
            let want = sha256.hasPrefix("sha256:") ? String(sha256.dropFirst(7)) : sha256
            guard actual == want.lowercased() else {
                throw StoreError("udockertools tarball \(shown): SHA-256 is \(actual), expected \(want)")
            }
        }
        guard lseek(fd, 0, SEEK_SET) == 0 else { throw SystemError("lseek", path: path) }
        let targets = ["bin": binDirectory, "lib": libDirectory, "doc": docDirectory]
        var staging: [String: String] = [:]
        defer { for dir in staging.values { try? FileTree.remove(dir) } }
        for (part, dir) in targets {
            try FileInfo.makeDirectories(dir)
            let s = "\(dir)/.install-\(getpid())"
            try? FileTree.remove(s)
            try syscall("mkdir", path: s) { mkdir(s, 0o700) }
            staging[part] = s
        }
        var staged: [(part: String, name: String)] = []
        var version: String?
        do {
            let reader = try ArchiveReader(fileDescriptor: fd)
            while let m = try reader.next() {
                let parts = m.name.split(separator: "/").map(String.init)
                guard parts.count >= 3, parts[0] == "udocker_dir", let dir = staging[parts[1]] else { continue }
                let name = parts[parts.count - 1]
                guard name != ".", name != "..", !name.hasPrefix(".install-"), !name.hasPrefix(".udocker-tools.") else { continue }
                let target = "\(dir)/\(name)"
                unlink(target)
                switch m.kind {
                case .file:
                    let mode: mode_t = parts[1] == "bin" ? 0o755 : 0o644
                    let out = try syscall("open", path: target) { open(target, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode) }
                    var bytes: [UInt8] = []
                    do {
                        try reader.readData { buf in
                            var off = 0
                            while off < buf.count {
                                let n = write(out, buf.baseAddress! + off, buf.count - off)
                                if n < 0 { if errno == EINTR { continue }; throw SystemError("write", path: target) }
                                off += n
                            }
                            if parts[1] == "lib" && name == "VERSION" && bytes.count < 64 { bytes += buf.prefix(64) }
                        }
                    } catch { close(out); throw error }
                    close(out)
                    if parts[1] == "lib" && name == "VERSION" {
                        version = String(decoding: bytes, as: UTF8.self).trimmed()
                    }
                case .symlink:
                    // e.g. proot-arm64 -> proot-arm64-4_8_0: only a sibling name, never a path.
                    guard !m.linkName.isEmpty, !m.linkName.contains("/"), m.linkName != "..", m.linkName != "." else {
                        throw StoreError("udockertools tarball \(shown): unsafe symlink \(m.name) -> \(m.linkName)")
                    }
                    try syscall("symlink", path: target) { symlink(m.linkName, target) }
                default:
                    continue
                }
                staged.removeAll { $0.part == parts[1] && $0.name == name }
                staged.append((parts[1], name))
            }
            try reader.finish()
        } catch let e as StoreError {
            throw e
        } catch {
            throw StoreError("udockertools tarball \(shown) is not a valid tarball: \(error)", cause: error)
        }
        guard let version, !version.isEmpty else {
            throw StoreError("udockertools tarball \(shown) has no udocker_dir/lib/VERSION")
        }
        if !force && Self.compareVersions(version, minimumVersion) < 0 {
            throw StoreError("udockertools tarball \(shown) is version \(version), older than \(minimumVersion) (install --force takes it)")
        }
        if purge { try purgeTools(keeping: ".install-\(getpid())") }
        for (part, name) in staged {
            let from = "\(staging[part]!)/\(name)", to = "\(targets[part]!)/\(name)"
            try syscall("rename", path: to) { rename(from, to) }
        }
        for part in ["bin", "lib"] {
            let names = staged.filter { $0.part == part }.map(\.name)
            if !names.isEmpty { try ToolChecksums.record(names, in: targets[part]!) }
        }
        return (version, staged.map { "\($0.part)/\($0.name)" }, actual)
    }

    /// Dotted-integer comparison (`1.2.11` > `1.2.9`), as udocker's `_version2int`.
    public static func compareVersions(_ a: String, _ b: String) -> Int {
        let x = a.split(separator: ".").map { Int($0.prefix(while: \.isNumber)) ?? 0 }
        let y = b.split(separator: ".").map { Int($0.prefix(while: \.isNumber)) ?? 0 }
        for i in 0..<max(x.count, y.count) {
            let l = i < x.count ? x[i] : 0, r = i < y.count ? y[i] : 0
            if l != r { return l < r ? -1 : 1 }
        }
        return 0
    }
}
