import Store
import OCI

/// The container to run, as the CLI found it in the repository.
public struct ContainerInstance: Sendable {
    public var id: String
    /// `containers/<id>`.
    public var directory: String
    /// `containers/<id>/ROOT` (or `--location`).
    public var root: String
    public var names: [String]
    /// `container.json`; nil with `--nometa`, `--location` or when missing.
    public var imageConfig: ImageConfig?
    /// Overlay containers (`create --storage=overlay`): how N1 mounts ROOT. nil for flat ones.
    public var overlay: OverlayMount?
    /// Records the container's mode in the repository (Store writes it, engines never do): after
    /// a Fakechroot conversion, and when the runner falls back to another engine. nil for a bare
    /// tree (`--location`), which has no mode to record.
    public var recordMode: (@Sendable (ExecutionMode) throws -> Void)?

    /// How N1 mounts an overlay container's ROOT: Store's checked layout (one option builder).
    public typealias OverlayMount = OverlayLayout

    public init(id: String, directory: String, root: String? = nil, names: [String] = [], imageConfig: ImageConfig? = nil) {
        self.id = id
        self.directory = directory
        self.root = root ?? directory + "/ROOT"
        self.names = names
        self.imageConfig = imageConfig
    }

    /// The container `runnable` read (its `container.json` only when `useConfig`: not with
    /// `--nometa`).
    public init(
        _ record: ContainerRecord, useConfig: Bool = true,
        recordMode: (@Sendable (ExecutionMode) throws -> Void)?
    ) {
        self.init(
            id: record.id, directory: record.directory, root: record.root, names: record.names,
            imageConfig: useConfig ? record.config : nil)
        overlay = record.overlay
        self.recordMode = recordMode
    }
}
