import ArgumentParser
import Engines
import Store

struct SetupCommand: UDockerCommand {
    static let configuration = CommandConfiguration(commandName: "setup", abstract: "Show or change the execution mode of a container",
        discussion: """
        setup [--execmode=<mode>] [--force] <container-id|name>
        Modes: N1 (native user namespaces), P1 (PRoot with seccomp), P2 (PRoot without seccomp).
        Without options it prints the current mode.
        """)
    @Option(name: .customLong("execmode"), help: "N1, P1 or P2") var execmode: String?
    @Flag(name: .customLong("force"), help: "convert even if already in the mode") var force = false
    @Flag(name: .customLong("purge"), help: .hidden) var purge = false
    @Flag(name: .customLong("fixperm"), help: .hidden) var fixperm = false
    @Flag(name: .customLong("nvidia"), help: .hidden) var nvidia = false
    @Argument(help: "container") var container: String

    func execute(_ context: CommandContext) async throws -> Int32 {
        let repo = context.repository
        let id = try context.containerID(container)
        let resolver = ModeResolver(context: context)
        if nvidia || fixperm { throw CommandFailure("setup --nvidia and --fixperm are not available yet") }
        if purge { return 0 }  // N1 and P modes leave no mountpoint files behind to purge.
        guard let wanted = execmode else {
            print("execmode: \(try resolver.mode(of: id).rawValue)")
            print("nvidiamode: False")
            return 0
        }
        guard let mode = ExecutionMode(rawValue: wanted.uppercased()) else {
            throw CommandFailure("invalid execmode: \(wanted) (valid: \(ExecutionMode.allCases.map(\.rawValue).joined(separator: " ")))")
        }
        guard !repo.isContainerProtected(id) else { throw CommandFailure("container is protected: \(container)") }
        _ = try EngineSelector.engine(for: mode, environment: resolver.engineEnvironment())
        guard let lock = try repo.containerLock(id, .exclusive, wait: false) else {
            throw CommandFailure("container is in use: \(container)")
        }
        defer { lock.unlock() }
        try repo.setExecutionMode(id, mode.rawValue)
        return 0
    }
}
