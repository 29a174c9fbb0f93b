import ContainerModel
import FoundationEssentials
import OCI
import UDockerSystem
#if canImport(Glibc)
import Glibc
#endif

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
