import FoundationEssentials
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
    /// `imagerepo.name`: the image it was created from (`IMPORTED:unknown` for imports); "" if none.
    public var image: String
    public var protected: Bool
    /// udocker's `M` column: W writable ROOT, R read-only, N missing, D not a directory.
    public var rootState: Character
    /// `execmode`; nil when none is recorded (or when it is invalid).
    public var mode: ExecutionMode?
    /// The text of an `execmode` that is not a mode (at most 16 characters), for messages.
    public var invalidMode: String?
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
            id: id, names: containerNames(id),
            image: AtomicFile.readString("\(dir)/imagerepo.name") ?? "",
            protected: FileInfo.exists("\(dir)/PROTECT"), rootState: state,
            mode: mode, invalidMode: invalid)
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
