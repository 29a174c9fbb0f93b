import FoundationEssentials
import UDockerSystem
#if canImport(Glibc)
import Glibc
#endif

/// The udocker-compatible local repository (`~/.udocker` or `$UDOCKER_DIR`):
///
///     <topdir>/{bin,lib,doc,repos,layers,containers}
///
/// Images live in `repos/<name as typed>/<tag>/` (a directory holding a `TAG` file), blobs in
/// `layers/`, containers in `containers/<uuid>/` with alias symlinks beside them. Every change of
/// metadata takes the repository lock and is written atomically.
public final class LocalRepository: @unchecked Sendable {
    public let topDirectory: String
    public let reposDirectory: String
    public let layersDirectory: String
    public let containersDirectory: String
    public let binDirectory: String
    public let libDirectory: String
    public let docDirectory: String

    public struct Paths: Sendable {
        public var top: String
        public var repos: String?
        public var layers: String?
        public var containers: String?
        public var bin: String?
        public var lib: String?
        public var doc: String?
        public init(
            top: String, repos: String? = nil, layers: String? = nil, containers: String? = nil,
            bin: String? = nil, lib: String? = nil, doc: String? = nil
        ) {
            self.top = top; self.repos = repos; self.layers = layers; self.containers = containers
            self.bin = bin; self.lib = lib; self.doc = doc
        }
    }

    public init(paths: Paths) {
        let top = LocalRepository.normalize(paths.top)
        topDirectory = top
        reposDirectory = paths.repos.map(LocalRepository.normalize) ?? "\(top)/repos"
        layersDirectory = paths.layers.map(LocalRepository.normalize) ?? "\(top)/layers"
        containersDirectory = paths.containers.map(LocalRepository.normalize) ?? "\(top)/containers"
        binDirectory = paths.bin.map(LocalRepository.normalize) ?? "\(top)/bin"
        libDirectory = paths.lib.map(LocalRepository.normalize) ?? "\(top)/lib"
        docDirectory = paths.doc.map(LocalRepository.normalize) ?? "\(top)/doc"
    }

    /// Where blobs enter `layers/` (pull, load, the config of a pull) and what prune may remove.
    public var blobStore: BlobIngest { BlobIngest(directory: layersDirectory) }

    public convenience init(topDirectory: String) {
        self.init(paths: Paths(top: topDirectory))
    }

    static func normalize(_ p: String) -> String {
        var s = p
        while s.count > 1 && s.hasSuffix("/") { s.removeLast() }
        return s
    }

    /// udocker's test: all five directories exist.
    public var isRepository: Bool {
        [reposDirectory, layersDirectory, containersDirectory, binDirectory, libDirectory].allSatisfy(FileInfo.isDirectory)
    }

    /// Creates the tree (idempotent). `containers/` and `layers/` are made 0700: container trees
    /// and extracted layers hold world-writable and setuid-looking paths of images, which other
    /// users of a shared filesystem must not reach. Existing directories are left as they are.
    public func create() throws {
        for d in [topDirectory, reposDirectory, layersDirectory, containersDirectory, binDirectory, libDirectory, docDirectory] {
            try FileInfo.makeDirectories(d, mode: d == containersDirectory || d == layersDirectory ? 0o700 : 0o755)
        }
    }

    /// The repository lock. Writers take it exclusively for short metadata changes; `create` holds
    /// it shared while it reads layers so that `rmi` cannot delete them underneath.
    public func lock(_ kind: FileLock.Kind = .exclusive) throws -> FileLock {
        try FileLock(path: "\(topDirectory)/.udocker.lock", kind: kind)
    }

    /// Runs `body` under the repository lock, after removing what killed operations left behind
    /// (`removeAbandonedStaging`; `prune` does that itself and reports it).
    public func withLock<T>(_ kind: FileLock.Kind = .exclusive, cleaning: Bool = true, _ body: () throws -> T) throws -> T {
        let l = try lock(kind)
        defer { l.unlock() }
        if cleaning { removeAbandonedStaging() }
        return try body()
    }

    /// Staging directories whose owner is gone: `containers/.creating-*` (create, import, clone),
    /// `layers/.importing-*` and `layers/.loading-*` whose `.lock` nobody holds, and
    /// `containers/.deleting-*` (an `rm` holds the repository lock exclusively from rename to
    /// removal, so whoever holds the lock sees only abandoned ones). A staging directory of a live
    /// operation is always locked (see `StagingDirectory`) and is left alone; so is its `.new-`
    /// form, abandoned when a process was killed between making and locking it.
    func removeAbandonedStaging() {
        for (dir, prefixes) in [
            (containersDirectory, StagingDirectory.containerPrefixes), (layersDirectory, StagingDirectory.layerPrefixes),
        ] {
            for name in FileInfo.list(dir) where prefixes.contains(where: name.hasPrefix) {
                let p = "\(dir)/\(name)"
                guard FileInfo.isDirectory(p), !FileInfo.isSymlink(p) else { continue }
                if name.hasPrefix(".deleting-") || Self.stagingIsAbandoned(p) { try? FileTree.remove(p) }
            }
        }
    }
}

/// A one-line error from the repository (`TypedError`: kind, message, cause).
public struct StoreError: TypedError, Sendable {
    public let kind: UDockerError.Kind
    public let description: String
    public let cause: (any Error)?
    public init(_ message: String, kind: UDockerError.Kind = .unknown, cause: (any Error)? = nil) {
        self.kind = kind; description = message; self.cause = cause
    }
}
