import FoundationEssentials
import OCI
import UDockerSystem
#if canImport(Glibc)
import Glibc
#endif

/// What the repository records about one container, read from `containers/<id>/` and validated:
/// the directory may come from a shared repository or a clone, so a field that does not parse is
/// reported as such (`invalidMode`), never taken as udocker's state.
public struct ContainerRecord: Sendable {
    public var id: String
    public var names: [String]
    /// `containers/<id>`.
    public var directory: String
    /// `containers/<id>/ROOT`: the tree (flat), or the overlay's mount point.
    public var root: String
    /// How ROOT is made (`lowers` present: overlay). Its layers are read and checked by
    /// `runnable`, which fills `overlay`.
    public var storage: ContainerStorage
    /// `imagerepo.name`: the image it was created from (`IMPORTED:unknown` for imports); "" if none.
    public var image: String
    public var protected: Bool
    /// udocker's `M` column: W writable ROOT, R read-only, N missing, D not a directory.
    public var rootState: Character
    /// `execmode`; nil when none is recorded (or when it is invalid).
    public var mode: ExecutionMode?
    /// The text of an `execmode` that is not a mode (at most 16 characters), for messages.
    public var invalidMode: String?
    /// `container.json`, checked (`runnable` only; nil in listings or when the container has none).
    public var config: ImageConfig?
    /// The overlay of an overlay container, its metadata checked (`runnable` only).
    public var overlay: OverlayLayout?
}

/// An overlay container's ROOT: layer directories of the shared cache (lowers) under the
/// container's own `upper/` (its changes) and `work/`.
public struct OverlayLayout: Sendable, Equatable {
    /// The layer cache (`layers/cache`); the lowerdirs of `options` are relative to it.
    public var cacheDirectory: String
    /// Layer ids (DiffID hex), base first.
    public var lowers: [String]
    public var upper: String
    public var work: String

    public init(cacheDirectory: String, lowers: [String], upper: String, work: String) {
        self.cacheDirectory = cacheDirectory; self.lowers = lowers; self.upper = upper; self.work = work
    }

    /// The overlayfs option string (its one builder): lowerdirs top first, relative to the cache
    /// directory (keeps it short), `userxattr` for a user namespace.
    public var options: String {
        "lowerdir=\(lowers.reversed().joined(separator: ":")),upperdir=\(upper),workdir=\(work),userxattr"
    }

    /// The kernel takes at most one page of mount options.
    public var fitsOneMount: Bool { options.utf8.count < 4096 }
}

/// `ps` lists records.
public typealias ContainerListing = ContainerRecord

/// The one writer of the metadata files of a container directory (a published container or its
/// staging directory): `execmode`, `root.path`, `imagerepo.name`, `container.json`.
public enum ContainerMetadata {
    /// Records the execution mode, and the real path of ROOT the mode was set at (`root.path`:
    /// a Fakechroot conversion is re-targeted from it when the container moves).
    public static func writeMode(_ mode: ExecutionMode, directory: String, root: String?) throws {
        try AtomicFile.write(mode.rawValue, to: "\(directory)/execmode")
        if let root, let real = realpath(root, nil) {
            defer { free(real) }
            try AtomicFile.write(String(cString: real), to: "\(directory)/root.path")
        }
    }

    /// `imagerepo.name` and, when given, `container.json` of a new container.
    public static func writeOrigin(image: String, config: [UInt8]?, directory: String) throws {
        try AtomicFile.write(image, to: "\(directory)/imagerepo.name")
        if let config { try AtomicFile.write(config, to: "\(directory)/container.json") }
    }

    /// The recorded mode of a container directory: `.none` without an `execmode` file.
    static func readMode(directory: String) -> (mode: ExecutionMode?, invalid: String?) {
        guard let text = AtomicFile.readString("\(directory)/execmode")?.trimmed() else {
            return (nil, nil)
        }
        guard let mode = ExecutionMode(parsing: text) else { return (nil, String(text.prefix(16))) }
        return (mode, nil)
    }
}

extension LocalRepository {
    /// The record of container `id` (an id, not an alias); nil when it does not exist.
    public func containerRecord(_ id: String) -> ContainerRecord? {
        let dir = containerDirectory(id)
        guard !id.hasPrefix("."), !id.contains("/"), !FileInfo.isSymlink(dir), FileInfo.isDirectory(dir) else { return nil }
        let root = "\(dir)/ROOT"
        let state: Character = !FileInfo.exists(root) ? "N" : !FileInfo.isDirectory(root) ? "D" : access(root, W_OK) == 0 ? "W" : "R"
        let (mode, invalid) = ContainerMetadata.readMode(directory: dir)
        return ContainerRecord(
            id: id, names: containerNames(id), directory: dir, root: root,
            storage: FileInfo.isRegularFile("\(dir)/lowers") ? .overlay : .flat,
            image: AtomicFile.readString("\(dir)/imagerepo.name") ?? "",
            protected: FileInfo.exists("\(dir)/PROTECT"), rootState: state,
            mode: mode, invalidMode: invalid)
    }

    /// Container `id` as `run` needs it, read and checked at once: its record with the checked
    /// `container.json` and, for an overlay container, its checked layout. A container that does
    /// not exist, an `execmode` that is not a mode, or metadata that does not check out throw.
    public func runnable(_ id: String) throws -> ContainerRecord {
        guard var record = containerRecord(id) else { throw StoreError("container not found: \(id)") }
        if let invalid = record.invalidMode {
            throw StoreError("invalid execution mode '\(invalid)' for container \(id) (valid: \(ExecutionMode.names))")
        }
        record.config = try containerConfigChecked(id).config
        if record.storage == .overlay { record.overlay = try overlayLayout(id) }
        return record
    }

    public func listContainers() -> [ContainerRecord] {
        FileInfo.list(containersDirectory).sorted().compactMap { containerRecord($0) }
    }

    /// The container's recorded mode; nil when none is recorded. An `execmode` that is not a mode
    /// (a copied or shared container) is an error naming the valid modes.
    public func executionMode(_ id: String) throws -> ExecutionMode? {
        let (mode, invalid) = ContainerMetadata.readMode(directory: containerDirectory(id))
        if let invalid {
            throw StoreError("invalid execution mode '\(invalid)' for container \(id) (valid: \(ExecutionMode.names))")
        }
        return mode
    }

    public func setExecutionMode(_ id: String, _ mode: ExecutionMode) throws {
        try ContainerMetadata.writeMode(mode, directory: containerDirectory(id), root: containerRoot(id))
    }
}
