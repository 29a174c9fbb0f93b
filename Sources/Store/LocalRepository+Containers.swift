import FoundationEssentials
import OCI
import UDockerSystem
#if canImport(Glibc)
import Glibc
#endif

extension LocalRepository {
    public func containerDirectory(_ id: String) -> String { "\(containersDirectory)/\(id)" }
    public func containerRoot(_ id: String) -> String { "\(containersDirectory)/\(id)/ROOT" }

    /// udocker's container id: a version-3-style UUID (`xxxxxxxx-xxxx-3xxx-yxxx-xxxxxxxxxxxx`).
    public static func newContainerID() -> String {
        var b = (0..<16).map { _ in UInt8.random(in: 0...255) }
        b[6] = (b[6] & 0x0f) | 0x30
        b[8] = (b[8] & 0x3f) | 0x80
        let h = Format.hex(b)
        let c = Array(h)
        return "\(String(c[0..<8]))-\(String(c[8..<12]))-\(String(c[12..<16]))-\(String(c[16..<20]))-\(String(c[20..<32]))"
    }

    /// `^[a-z0-9]+-[a-z0-9]+-[a-z0-9]+-[a-z0-9]+-[a-z0-9]+$`: the form of a container id.
    static func hasIDForm(_ name: String) -> Bool {
        let parts = name.utf8.split(separator: UInt8(ascii: "-"), omittingEmptySubsequences: false)
        return parts.count == 5
            && parts.allSatisfy { !$0.isEmpty && $0.allSatisfy { ($0 >= 0x61 && $0 <= 0x7a) || ($0 >= 0x30 && $0 <= 0x39) } }
    }

    /// A container id from an id or an alias; nil when neither exists.
    public func containerID(_ idOrName: String) -> String? {
        guard !idOrName.isEmpty, !idOrName.contains("/"), idOrName != ".", idOrName != ".." else { return nil }
        let p = "\(containersDirectory)/\(idOrName)"
        if FileInfo.isSymlink(p) {
            guard let t = FileInfo.readLink(p) else { return nil }
            let id = PathName.lastComponent(t)
            return FileInfo.isDirectory(containerDirectory(id)) ? id : nil
        }
        return FileInfo.isDirectory(p) ? idOrName : nil
    }

    /// The aliases (symlinks in `containers/`) that point at `id`.
    public func containerNames(_ id: String) -> [String] {
        FileInfo.list(containersDirectory).sorted().filter { n in
            let p = "\(containersDirectory)/\(n)"
            guard FileInfo.isSymlink(p), let t = FileInfo.readLink(p) else { return false }
            return PathName.lastComponent(t) == id
        }
    }

    /// udocker's alias rule: none of `/ . space [ ]`, at most 2048 characters.
    public static func validateName(_ name: String) throws {
        guard !name.isEmpty, name.count <= 2048, !name.contains(where: { "/. []".contains($0) || $0.isNewline || $0 == "\0" }) else {
            throw StoreError("invalid container name '\(name.prefix(80))': it may not contain / . space [ ]")
        }
        guard !hasIDForm(name) else {
            throw StoreError("invalid container name '\(name)': it has the form of a container id")
        }
    }

    public func setContainerName(_ id: String, _ name: String) throws {
        try Self.validateName(name)
        try withLock {
            guard FileInfo.isDirectory(containerDirectory(id)) else { throw StoreError("container not found: \(id)") }
            let link = "\(containersDirectory)/\(name)"
            guard !FileInfo.exists(link) else { throw StoreError("container name already exists: \(name)") }
            try syscall("symlink", path: link) { symlink(id, link) }
        }
    }

    public func removeContainerName(_ name: String) throws {
        try Self.validateName(name)
        try withLock {
            let link = "\(containersDirectory)/\(name)"
            guard FileInfo.isSymlink(link) else { throw StoreError("container name not found: \(name)") }
            try syscall("unlink", path: link) { unlink(link) }
        }
    }

    public func renameContainer(_ name: String, to newName: String) throws {
        try Self.validateName(name); try Self.validateName(newName)
        try withLock {
            let link = "\(containersDirectory)/\(name)"
            guard FileInfo.isSymlink(link), let target = FileInfo.readLink(link) else {
                throw StoreError("container name not found: \(name)")
            }
            let newLink = "\(containersDirectory)/\(newName)"
            guard !FileInfo.exists(newLink) else { throw StoreError("container name already exists: \(newName)") }
            try syscall("symlink", path: newLink) { symlink(target, newLink) }
            unlink(link)
        }
    }

    public func isContainerProtected(_ id: String) -> Bool { FileInfo.exists("\(containerDirectory(id))/PROTECT") }

    public func setContainerProtected(_ id: String, _ on: Bool) throws {
        let p = "\(containerDirectory(id))/PROTECT"
        if on { try AtomicFile.write("", to: p) } else if FileInfo.exists(p) { try syscall("unlink", path: p) { unlink(p) } }
    }

    /// The per-container lock: shared while a container runs, exclusive to remove or convert it.
    public func containerLock(_ id: String, _ kind: FileLock.Kind, wait: Bool = true) throws -> FileLock? {
        let path = "\(containerDirectory(id))/.lock"
        if wait { return try FileLock(path: path, kind: kind) }
        return try FileLock.tryLock(path: path, kind: kind)
    }

    /// Deletes a container and its aliases. Refuses a protected container or one that is running.
    public func removeContainer(_ id: String) throws {
        let dir = containerDirectory(id)
        guard FileInfo.isDirectory(dir), !FileInfo.isSymlink(dir) else { throw StoreError("container not found: \(id)") }
        guard !isContainerProtected(id) else { throw StoreError("container is protected: \(id)") }
        guard let running = try containerLock(id, .exclusive, wait: false) else {
            throw StoreError("container is in use: \(id)")
        }
        defer { running.unlock() }
        try withLock {
            for n in containerNames(id) { unlink("\(containersDirectory)/\(n)") }
            // Move aside first so a crash never leaves a half-deleted container that ps lists.
            let trash = "\(containersDirectory)/.deleting-\(id)"
            try syscall("rename", path: dir) { rename(dir, trash) }
            try FileTree.remove(trash)
        }
    }

    public func containerConfigBytes(_ id: String) -> [UInt8]? { AtomicFile.read("\(containerDirectory(id))/container.json") }

    /// The container's `container.json`, checked as udocker checks it before `run` and `inspect`:
    /// a missing, empty, non-JSON or non-object file stops the command ("invalid container json
    /// metadata", with what is wrong), instead of running without the image's settings.
    public func containerConfigChecked(_ id: String) throws -> (bytes: [UInt8], config: ImageConfig) {
        let path = "\(containerDirectory(id))/container.json"
        func invalid(_ why: String, cause: (any Error)? = nil) -> StoreError {
            StoreError("invalid container json metadata: \(path): \(why)", kind: .corrupt, cause: cause)
        }
        guard CloneMetadata.regularFile(path) != nil || !FileInfo.exists(path) else { throw invalid("not a regular file of at most 64 MB") }
        guard let bytes = AtomicFile.read(path) else { throw invalid("missing or unreadable") }
        // One typed decode on every run (the direct reading; `JSONDecoder` for what it leaves); the
        // untyped parse that words a refusal only when that fails (it cost a run ~6 % of its CPU).
        if let config = ImageConfig.fastDecode(bytes) ?? (try? JSONDecoder().decode(ImageConfig.self, from: Data(bytes))) {
            guard !Self.isEmptyObject(bytes) else { throw invalid("empty") }
            return (bytes, config)
        }
        guard let object = JSONAny.parse(bytes) else { throw invalid("not JSON") }
        guard let dict = object as? [String: Any] else { throw invalid("not a JSON object") }
        guard !dict.isEmpty else { throw invalid("empty") }
        do { return (bytes, try JSONDecoder().decode(ImageConfig.self, from: Data(bytes))) } catch {
            throw invalid("not an image configuration (\(error))", cause: error)
        }
    }

    /// Whether a document that decoded as an object is `{}` (whitespace aside).
    static func isEmptyObject(_ bytes: [UInt8]) -> Bool {
        let significant = bytes.lazy.filter { ![0x20, 0x09, 0x0A, 0x0D].contains($0) }
        var it = significant.makeIterator()
        return it.next() == UInt8(ascii: "{") && it.next() == UInt8(ascii: "}")
    }
}
