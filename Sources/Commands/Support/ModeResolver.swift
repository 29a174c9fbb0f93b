import ContainerModel
import Engines
import FoundationEssentials
import Store

/// Which engine a container runs with: its `execmode` file, else `UDOCKER_DEFAULT_EXECUTION_MODE`
/// (`override_default_execution_mode`), else N1 where user namespaces work, else P1.
struct ModeResolver {
    var context: CommandContext

    func engineEnvironment() -> EngineEnvironment {
        let c = context.configuration
        var env = EngineEnvironment(
            tmpDir: c.tmpDirectory, binDir: context.repository.binDirectory,
            hostEnvironment: context.environment)
        // udocker's default "UDOCKER" means its bundled proot; we bundle none, so the default
        // searches $UDOCKER_DIR/bin and then PATH. An explicit path is used as given.
        let proot = c["use_proot_executable"]
        env.prootExecutable = (proot.isEmpty || proot == "UDOCKER") ? nil : proot
        // The tool settings as values (never written into the host environment, which reaches
        // the container under --hostenv). A variable set even to "" wins over the config file,
        // as in udocker (os.getenv with the config value as default).
        env.runcExecutable = context.environment["UDOCKER_USE_RUNC_EXECUTABLE"] ?? c["use_runc_executable"]
        env.singularityExecutable = context.environment["UDOCKER_USE_SINGULARITY_EXECUTABLE"] ?? c["use_singularity_executable"]
        env.sysdirs = c.sysdirs
        env.udockerDir = context.repository.topDirectory
        env.rootPath = c["root_path"]
        env.userPath = c["user_path"]
        env.jobEnvironmentPrefixes = JobEnvironment.prefixes(from: c["job_env_prefixes"])
        env.verbosity = c.verbosity
        env.debug = c.verbosity >= 5
        return env
    }

    func defaultMode() -> String { configuredDefault()?.rawValue ?? EngineSelector.defaultMode(environment: engineEnvironment()).rawValue }

    /// `override_default_execution_mode`, when it names a mode.
    func configuredDefault() -> ExecutionMode? {
        ExecutionMode(parsing: context.configuration["override_default_execution_mode"])
    }

    /// The container's own mode or the configured default; nil when neither is set (then the
    /// caller picks N1 and falls back to P1 if user namespaces are unavailable).
    /// `recorded`: the container's mode as `runnable` read it.
    func explicitMode(recorded: ExecutionMode?, of id: String) throws -> ExecutionMode? {
        if let m = recorded { return m }
        let o = context.configuration["override_default_execution_mode"]
        guard !o.isEmpty else { return nil }
        guard let m = configuredDefault() else {
            throw CommandFailure("invalid execution mode '\(o)' for container \(id) (valid: \(ExecutionMode.names))")
        }
        return m
    }

    func mode(of id: String) throws -> ExecutionMode {
        if let m = try context.repository.executionMode(id) { return m }
        return configuredDefault() ?? EngineSelector.defaultMode(environment: engineEnvironment())
    }
}
