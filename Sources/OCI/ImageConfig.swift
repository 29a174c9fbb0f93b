/// The image configuration (`application/vnd.oci.image.config.v1+json`), the part of it that
/// udocker reads. Unknown keys are kept verbatim by storing the raw JSON beside it where needed.
public struct ImageConfig: Codable, Sendable, Hashable {
    public struct Config: Codable, Sendable, Hashable {
        public var user: String?
        public var env: [String]?
        public var entrypoint: [String]?
        public var cmd: [String]?
        public var workingDir: String?
        public var hostname: String?
        public var domainname: String?
        public var exposedPorts: [String: Empty]?
        public var volumes: [String: Empty]?
        public var labels: [String: String]?
        public var stopSignal: String?
        public init() {}

        /// The wire names (Docker's Go field names), in the same order.
        enum CodingKeys: String, CodingKey {
            case user = "User", env = "Env", entrypoint = "Entrypoint", cmd = "Cmd", workingDir = "WorkingDir"
            case hostname = "Hostname", domainname = "Domainname", exposedPorts = "ExposedPorts"
            case volumes = "Volumes", labels = "Labels", stopSignal = "StopSignal"
        }
    }
    public struct Empty: Codable, Sendable, Hashable { public init() {} }
    public struct RootFS: Codable, Sendable, Hashable {
        public var type: String
        public var diffIDs: [Digest]
        public init(type: String = "layers", diffIDs: [Digest]) { self.type = type; self.diffIDs = diffIDs }
        enum CodingKeys: String, CodingKey { case type, diffIDs = "diff_ids" }
    }

    public var architecture: String?
    public var os: String?
    public var variant: String?
    public var created: String?
    public var author: String?
    public var config: Config?
    public var containerConfig: Config?
    public var rootfs: RootFS?

    enum CodingKeys: String, CodingKey {
        case architecture, os, variant, created, author, config
        case containerConfig = "container_config"
        case rootfs
    }

    public init(architecture: String? = nil, os: String? = nil, config: Config? = nil, rootfs: RootFS? = nil) {
        self.architecture = architecture; self.os = os; self.config = config; self.rootfs = rootfs
    }

    /// udocker's lookup: `config`, else `container_config`.
    public var effectiveConfig: Config { config ?? containerConfig ?? Config() }
}
