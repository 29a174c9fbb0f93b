/// The image configuration (`application/vnd.oci.image.config.v1+json`), the part of it that
/// udocker reads. Unknown keys are kept verbatim by storing the raw JSON beside it where needed.
public struct ImageConfig: Codable, Sendable, Hashable {
    public struct Config: Codable, Sendable, Hashable {
        public var User: String?
        public var Env: [String]?
        public var Entrypoint: [String]?
        public var Cmd: [String]?
        public var WorkingDir: String?
        public var Hostname: String?
        public var Domainname: String?
        public var ExposedPorts: [String: Empty]?
        public var Volumes: [String: Empty]?
        public var Labels: [String: String]?
        public var StopSignal: String?
        public init() {}
    }
    public struct Empty: Codable, Sendable, Hashable { public init() {} }
    public struct RootFS: Codable, Sendable, Hashable {
        public var type: String
        public var diff_ids: [Digest]
        public init(type: String = "layers", diff_ids: [Digest]) { self.type = type; self.diff_ids = diff_ids }
    }

    public var architecture: String?
    public var os: String?
    public var variant: String?
    public var created: String?
    public var author: String?
    public var config: Config?
    public var container_config: Config?
    public var rootfs: RootFS?

    public init(architecture: String? = nil, os: String? = nil, config: Config? = nil, rootfs: RootFS? = nil) {
        self.architecture = architecture; self.os = os; self.config = config; self.rootfs = rootfs
    }

    /// udocker's lookup: `config`, else `container_config`.
    public var effectiveConfig: Config { config ?? container_config ?? Config() }
}
