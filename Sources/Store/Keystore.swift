import FoundationEssentials
import UDockerSystem
#if canImport(Glibc)
import Glibc
#endif

/// udocker's credential keystore: JSON `{"<registry url>": {"auth": base64("user:password"),
/// "email": ""}}`. Where it is follows udocker 1.3.17: `UDOCKER_KEYSTORE` / the `keystore` key
/// (default `keystore`); a relative value is under `~/.udocker`, never under `UDOCKER_DIR`.
///
/// Safety: refused when the file or its directory belongs to someone else, when the file is
/// readable or writable by group/others, or when the directory is writable by them. Written 0600
/// (a new directory 0700) through a temporary file and a rename, so a failed write leaves the old
/// keystore whole; the old file's content is overwritten with spaces only after the rename.
public struct Keystore: Sendable {
    public let path: String
    public init(path: String) { self.path = path }

    /// udocker's key for a `--registry` value: `https://` added when there is no scheme.
    public static func registryKey(_ registry: String?) -> String {
        guard let r = registry, !r.isEmpty else { return "https://registry-1.docker.io" }
        if r.contains("://") { return r.hasSuffix("/") ? String(r.dropLast()) : r }
        return "https://\(r)"
    }

    var directory: String { PathName.parent(path) }

    /// Refuses (one line saying what to do) a keystore another user could read or change.
    public func checkOwnership() throws {
        var st = stat()
        if stat(directory, &st) == 0 {
            guard st.st_uid == getuid() else { throw StoreError("keystore directory \(directory) is not owned by you") }
            if st.st_mode & 0o022 != 0 {
                throw StoreError("keystore directory \(directory) is writable by others: chmod go-w \(directory)")
            }
        }
        if lstat(path, &st) == 0 {
            guard (st.st_mode & S_IFMT) == S_IFREG else { throw StoreError("keystore \(path) is not a regular file") }
            guard st.st_uid == getuid() else { throw StoreError("keystore \(path) is not owned by you") }
            guard st.st_mode & 0o077 == 0 else {
                throw StoreError("keystore \(path) is readable or writable by others: chmod 600 \(path)")
            }
        }
    }

    func load() throws -> [String: [String: String]] {
        guard let bytes = AtomicFile.read(path), !bytes.isEmpty else { return [:] }
        guard let obj = JSONAny.object(bytes) else {
            throw StoreError("keystore \(path) is not valid JSON (fix or remove it: udocker logout -a)")
        }
        var out: [String: [String: String]] = [:]
        for (k, v) in obj { if let d = v as? [String: String] { out[k] = d } }
        return out
    }

    func save(_ entries: [String: [String: String]]) throws {
        try checkOwnership()
        try FileInfo.makeDirectories(directory, mode: 0o700)
        let data = try JSONAny.serialize(entries, options: [.withoutEscapingSlashes])
        let old = openOld()
        defer { if old >= 0 { close(old) } }
        let mask = umask(0o077)
        defer { umask(mask) }
        try AtomicFile.write(Array(data), to: path, mode: 0o600)
        if old >= 0 { Self.blank(old) }
    }

    /// The current keystore opened for writing (or -1): blanked once it has been replaced.
    private func openOld() -> Int32 {
        var st = stat()
        guard lstat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG, st.st_size > 0 else { return -1 }
        return open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW)
    }

    /// Overwrites a file's content with spaces (udocker's shred), through an open descriptor.
    static func blank(_ fd: Int32) {
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_size > 0 else { return }
        let spaces = [UInt8](repeating: 0x20, count: Int(st.st_size))
        _ = spaces.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        fsync(fd)
    }

    /// Base64 `user:password` stored for a registry key, as udocker looks it up.
    public func authorization(registry: String?) throws -> String? {
        try checkOwnership()
        return try load()[Self.registryKey(registry)]?["auth"]
    }

    public func store(registry: String?, username: String, password: String) throws {
        try checkOwnership()
        var entries = try load()
        let auth = Data("\(username):\(password)".utf8).base64EncodedString()
        entries[Self.registryKey(registry)] = ["auth": auth, "email": ""]
        try save(entries)
    }

    /// Removes one registry's credentials; false when there were none.
    @discardableResult
    public func remove(registry: String?) throws -> Bool {
        try checkOwnership()
        var entries = try load()
        guard entries.removeValue(forKey: Self.registryKey(registry)) != nil else { return false }
        try save(entries)
        return true
    }

    public func erase() throws {
        try checkOwnership()
        let old = openOld()
        defer { if old >= 0 { close(old) } }
        if unlink(path) != 0 && errno != ENOENT { throw SystemError("unlink", path: path) }
        if old >= 0 { Self.blank(old) }
    }
}
