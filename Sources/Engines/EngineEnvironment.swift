import FoundationEssentials

/// Host and configuration facts the CLI resolves for the engines.
public struct EngineEnvironment: Sendable {
    /// Where per-run files (passwd/group copies) go; `PROOT_TMP_DIR` for PRoot.
    public var tmpDir: String
    /// `$UDOCKER_DIR/bin`.
    public var binDir: String
    /// `$UDOCKER_DIR` (user data files such as `nvidia-files.conf`); nil when unknown.
    public var udockerDir: String?
    /// `UDOCKER_USE_PROOT_EXECUTABLE`: a path, `"UDOCKER"` (= binDir only) or nil.
    public var prootExecutable: String?
    /// `UDOCKER_USE_RUNC_EXECUTABLE` (or `use_runc_executable`): a path, `"UDOCKER"` (= binDir
    /// only), or nil/"" (search PATH, then binDir). A value, not a variable: a setting from the
    /// config file never enters `hostEnvironment`, which `--hostenv` hands to the container.
    public var runcExecutable: String?
    /// `UDOCKER_USE_SINGULARITY_EXECUTABLE` (or `use_singularity_executable`), as `runcExecutable`.
    public var singularityExecutable: String?
    /// Host paths bound at the same place unless `--nosysdirs`; missing ones are dropped silently.
    public var sysdirs: [String] = ["/dev", "/proc", "/sys", "/etc/resolv.conf", "/etc/host.conf", "/lib/modules"]
    /// PATH when the container environment has none (uid 0 / other users).
    public var rootPath = "/usr/sbin:/sbin:/usr/bin:/bin"
    public var userPath = "/usr/sbin:/sbin:/usr/local/bin:/usr/bin:/bin"
    /// 0 error .. 5 debug; 3 (info) is the default; the banner shows at >= 3.
    public var verbosity: Int
    public var debug: Bool
    /// Host variables with these prefixes pass without `--hostenv` (`job_env_prefixes`).
    public var jobEnvironmentPrefixes: [String] = JobEnvironment.defaultPrefixes
    /// The host environment (normally `ProcessInfo.processInfo.environment`).
    public var hostEnvironment: [String: String]

    public init(
        tmpDir: String, binDir: String, prootExecutable: String? = nil,
        sysdirs: [String]? = nil, rootPath: String? = nil, userPath: String? = nil,
        verbosity: Int = 3, debug: Bool = false,
        hostEnvironment: [String: String] = ProcessInfo.processInfo.environment
    ) {
        self.tmpDir = tmpDir
        self.binDir = binDir
        self.prootExecutable = prootExecutable
        if let sysdirs { self.sysdirs = sysdirs }
        if let rootPath { self.rootPath = rootPath }
        if let userPath { self.userPath = userPath }
        self.verbosity = verbosity
        self.debug = debug
        self.hostEnvironment = hostEnvironment
    }
}
