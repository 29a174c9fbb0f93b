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

    public struct OverlayMount: Sendable {
        /// The layer cache (`layers/cache`); the lowerdirs in `options` are relative to it.
        public var cacheDirectory: String
        /// overlayfs options: `lowerdir=…,upperdir=…,workdir=…,userxattr`.
        public var options: String
        public init(cacheDirectory: String, options: String) { self.cacheDirectory = cacheDirectory; self.options = options }
    }

    public init(id: String, directory: String, root: String? = nil, names: [String] = [], imageConfig: ImageConfig? = nil) {
        self.id = id
        self.directory = directory
        self.root = root ?? directory + "/ROOT"
        self.names = names
        self.imageConfig = imageConfig
    }
}
