import FoundationEssentials
import Store
import UDockerSystem

/// What every command gets: the configuration, the message sink and the repository.
public struct CommandContext: Sendable {
    public var configuration: Configuration
    /// The process's output channel (rendered by `OutputRenderer`).
    public let messages = Output()
    public var environment: [String: String]
    public var repository: LocalRepository

    init(configuration: Configuration, environment: [String: String]) {
        self.configuration = configuration
        self.environment = environment
        repository = LocalRepository(
            paths: .init(
                top: configuration.topDirectory,
                repos: configuration.path("reposdir"), layers: configuration.path("layersdir"),
                containers: configuration.path("containersdir"), bin: configuration.path("bindir"),
                lib: configuration.path("libdir"), doc: configuration.path("docdir")))
    }

    /// A container id from an id or alias, or a one-line error.
    func containerID(_ idOrName: String) throws -> String {
        guard let id = repository.containerID(idOrName) else { throw CommandFailure("invalid container id or name: \(idOrName)") }
        return id
    }
}

/// What a parsed command line does: executed with the context, returns the exit status.
protocol CommandAction {
    func execute(_ context: CommandContext) async throws -> Int32
}

/// A udocker command: parsed by ArgumentParser, executed with the context, returns the exit status.
protocol UDockerCommand: ParsableCommandBase, CommandAction {
    /// Whether the command needs the repository to exist (created on the fly unless `--repo`).
    static var needsRepository: Bool { get }
    /// Argument preprocessing before ArgumentParser sees them.
    static func normalize(_ args: [String]) -> [String]
    /// The command line (after `normalize`) read without ArgumentParser, for the common forms of
    /// frequent commands; `nil`: ArgumentParser parses it (and reports its errors).
    static func fastParse(_ args: [String]) -> (any CommandAction)?
}

extension UDockerCommand {
    static var needsRepository: Bool { true }
    static func fastParse(_ args: [String]) -> (any CommandAction)? { nil }
}
