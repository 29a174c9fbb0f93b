import Foundation
import System
#if canImport(Glibc)
import Glibc
#endif

/// udocker's credential keystore (`~/.udocker/keystore`): JSON
/// `{"<registry url>": {"auth": base64("user:password"), "email": ""}}`, written 0600 through a
/// temporary file; refused when the file or its directory belongs to someone else or the file is
/// readable by others. Old content is overwritten before it is replaced, as udocker does.
public struct Keystore: Sendable {
    public let path: String
    public init(path: String) { self.path = path }

    public static func registryKey(_ registry: String?) -> String {
        guard let r = registry, !r.isEmpty else { return "https://registry-1.docker.io" }
        if r.hasPrefix("http://") || r.hasPrefix("https://") { return r.hasSuffix("/") ? String(r.dropLast()) : r }
        return "https://\(r)"
    }

    func checkOwnership() throws {
        let dir = (path as NSString).deletingLastPathComponent
        var st = stat()
        if stat(dir, &st) == 0, st.st_uid != getuid() { throw StoreError("keystore directory \(dir) is not owned by you") }
        if lstat(path, &st) == 0 {
            guard (st.st_mode & S_IFMT) == S_IFREG else { throw StoreError("keystore \(path) is not a regular file") }
            guard st.st_uid == getuid() else { throw StoreError("keystore \(path) is not owned by you") }
            guard st.st_mode & 0o077 == 0 else { throw StoreError("keystore \(path) is readable by others: chmod 600 it") }
        }
    }

    func load() throws -> [String: [String: String]] {
        guard let bytes = AtomicFile.read(path), !bytes.isEmpty else { return [:] }
        guard let obj = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] else {
            throw StoreError("keystore \(path) is not valid JSON")
        }
        var out: [String: [String: String]] = [:]
        for (k, v) in obj { if let d = v as? [String: String] { out[k] = d } }
        return out
    }

    func save(_ entries: [String: [String: String]]) throws {
        try checkOwnership()
        let dir = (path as NSString).deletingLastPathComponent
        try FileInfo.makeDirectories(dir, mode: 0o700)
        shred()
        let data = try JSONSerialization.data(withJSONObject: entries, options: [.sortedKeys])
        let old = umask(0o077)
        defer { umask(old) }
        try AtomicFile.write(Array(data), to: path, mode: 0o600)
    }

    /// Overwrites the current content with spaces before it is replaced or removed.
    func shred() {
        var st = stat()
        guard lstat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG, st.st_size > 0 else { return }
        let fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { return }
        let spaces = [UInt8](repeating: 0x20, count: Int(st.st_size))
        _ = spaces.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        fsync(fd)
        close(fd)
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
        shred()
        if unlink(path) != 0 && errno != ENOENT { throw SystemError("unlink", path: path) }
    }
}
