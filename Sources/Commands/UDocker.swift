import ArgumentParser
import Engines
import FoundationEssentials
import Store
import UDockerSystem
#if canImport(Glibc)
import Glibc
#endif

/// The `udocker` command line: `udocker [general_options] <command> [command_options] <args>`.
public enum UDocker {
    /// The udocker release this implementation is compatible with (`version:` line, parsed by scripts).
    public static let version = "1.3.17"
    /// This implementation's own version.
    public static let swiftVersion = "1.0.0"

    /// Every command's name (each resolved by `command(named:)`; CommandLineDefinitionTests).
    static let commandNames: [String] = [
        "help", "version", "showconf", "pull", "images", "create", "run", "ps", "rm", "rmi", "tag", "name", "rmname", "rename", "inspect",
        "verify", "manifest", "search", "mkrepo", "setup", "protect", "unprotect", "login", "logout", "clone", "export", "import", "load",
        "save", "install", "doctor",
    ]

    /// The command called `name`. A switch rather than a table, so a `run` resolves the protocol
    /// conformances of `run` alone: building a table of all 31 command types cost a run 10 %
    /// of its CPU time.
    static func command(named name: String) -> (any UDockerCommand.Type)? {
        switch name {
        case "help": HelpCommand.self
        case "version": VersionCommand.self
        case "showconf": ShowConfCommand.self
        case "pull": PullCommand.self
        case "images": ImagesCommand.self
        case "create": CreateCommand.self
        case "run": RunCommand.self
        case "ps": PsCommand.self
        case "rm": RmCommand.self
        case "rmi": RmiCommand.self
        case "tag": TagCommand.self
        case "name": NameCommand.self
        case "rmname": RmnameCommand.self
        case "rename": RenameCommand.self
        case "inspect": InspectCommand.self
        case "verify": VerifyCommand.self
        case "manifest": ManifestCommand.self
        case "search": SearchCommand.self
        case "mkrepo": MkrepoCommand.self
        case "setup": SetupCommand.self
        case "protect": ProtectCommand.self
        case "unprotect": UnprotectCommand.self
        case "login": LoginCommand.self
        case "logout": LogoutCommand.self
        case "clone": CloneCommand.self
        case "export": ExportCommand.self
        case "import": ImportCommand.self
        case "load": LoadCommand.self
        case "save": SaveCommand.self
        case "install": InstallCommand.self
        case "doctor": DoctorCommand.self
        default: nil
        }
    }

    /// Name → command, for help, the manual and completions (built on first use, which a `run`
    /// never makes).
    static let commands: [String: any UDockerCommand.Type] = Dictionary(
        uniqueKeysWithValues: commandNames.compactMap { n in command(named: n).map { (n, $0) } })

    /// `udocker version`, `--version` or `-V` alone, answered before anything else starts (no
    /// environment, configuration or concurrency runtime) when no configuration file exists: the
    /// status, or nil for any other command line. Scripts call it to check the installation; it
    /// costs what starting costs.
    public static func immediateStatus(argc: Int32, argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> Int32? {
        guard argc == 2, let first = argv[1] else { return nil }
        switch String(cString: first) {
        case "version", "--version", "-V":
            guard let tarball = Configuration.tarballWithoutReading() else { return nil }
            VersionCommand.printVersion(tarball: tarball)
            return 0
        default: return nil
        }
    }

    /// Runs the command line and returns the process exit status.
    public static func main(_ arguments: [String]) async -> Int32 {
        var overrides = Configuration.Overrides()
        var allowRoot = false
        var i = 0
        var args = arguments
        // General options: everything before the first token that is not an option.
        while i < args.count, args[i].hasPrefix("-") {
            let a = args[i]
            switch a {
            case "-h", "--help":
                if i + 1 < args.count, let t = command(named: args[i + 1]) { print(t.helpMessage()); return 0 }
                print(HelpCommand.text); return 0
            case "-V", "--version":
                do {
                    let c = try Configuration(environment: ProcessInfo.processInfo.environment, overrides: overrides)
                    VersionCommand.printVersion(tarball: c["tarball"])
                } catch {
                    return fail("\(error)")
                }
                return 0
            case "-D", "--debug": overrides.debug = true
            case "-q", "--quiet": overrides.quiet = true
            case "--insecure": overrides.insecure = true
            case "--allow-root": allowRoot = true
            case "--repo", "--config":
                guard i + 1 < args.count else { return fail("option \(a) needs a value") }
                if a == "--repo" { overrides.repo = args[i + 1] } else { overrides.configFile = args[i + 1] }
                i += 1
            default:
                if a.hasPrefix("--repo=") {
                    overrides.repo = String(a.dropFirst(7))
                } else if a.hasPrefix("--config=") {
                    overrides.configFile = String(a.dropFirst(9))
                } else {
                    return fail("syntax error at: \(a)")
                }
            }
            i += 1
        }
        args = Array(args[i...])
        guard let name = args.first else { print(HelpCommand.text); return 0 }
        if let status = Manual.run(name, Array(args.dropFirst())) { return status }
        guard let type = command(named: name) else { return fail("invalid command: \(name) (see udocker help)") }
        let rest = Array(args.dropFirst())
        let normalized = type.normalize(rest)
        // Only the command's own options ask for its help: `run c tool --help` runs `tool --help`.
        let options = normalized.firstIndex(of: "--").map { Array(normalized[..<$0]) } ?? normalized
        if options.contains("--help") || options.contains("-h") {
            print(type.helpMessage()); return 0
        }
        if geteuid() == 0 && !allowRoot && !["help", "version", "showconf"].contains(name) {
            return fail("do not run as root !  (use --allow-root to override)")
        }
        // Read here, not first: `--version` and `--help` need no environment (building it costs a
        // start-up 0.2 ms).
        let env = ProcessInfo.processInfo.environment
        // The repository of this command, once the configuration is read (for `ErrorAdvice`).
        var repository: String?
        do {
            let configuration = try Configuration(environment: env, overrides: overrides)
            let context = CommandContext(configuration: configuration, environment: env)
            repository = context.repository.topDirectory
            Output.install(OutputRenderer(verbosity: configuration.verbosity, environment: env))
            for w in configuration.warnings { context.messages.warning(w) }
            if type.needsRepository {
                if overrides.repo != nil {
                    guard context.repository.isRepository else { throw CommandFailure("invalid udocker repository: \(overrides.repo!)") }
                } else if !context.repository.isRepository {
                    context.messages.info("creating repo: \(context.repository.topDirectory)")
                    try context.repository.create()
                }
                if let unsafe = context.repository.unsafeOwnershipReason {
                    try Self.useForeignRepository(context, command: name, arguments: normalized, refusal: unsafe)
                }
            }
            // `run` and `version` read their common forms themselves (ArgumentParser's reflection
            // is half of a run's CPU time); anything else, and every error, is ArgumentParser's.
            if let action = type.fastParse(normalized) { return try await action.execute(context) }
            let parsed: any ParsableCommand
            do {
                parsed = try type.parse(normalized)
            } catch {
                let msg = Self.oneLine(type.message(for: error))
                return fail(msg)
            }
            guard let command = parsed as? any UDockerCommand else { return fail("internal error: \(name)") }
            return try await command.execute(context)
        } catch {
            return fail("\(error)", status: exitStatus(for: error), cause: error, repository: repository)
        }
    }

    /// The exit status of a failure, in one table: the status the error asks for
    /// (`TypedError.exitStatus`), else its kind's. Engine errors are a failed `run`: udocker's
    /// run exits 2 when it could not be initialised (bad -v, -w, command not found) and 1 when
    /// the engine's tool is missing; everything else exits 1.
    public static func exitStatus(for error: any Error) -> Int32 {
        guard let e = error as? any TypedError else { return 1 }
        if let status = e.exitStatus { return status }
        if e is EngineError { return runStatus[e.kind] ?? 2 }
        return 1
    }

    /// Exit statuses of the engine kinds that are not 2.
    static let runStatus: [UDockerError.Kind: Int32] = [.toolNotFound: 1]

    /// Commands that only read a repository: allowed on another user's repository that
    /// `trusted_repository_owners` names (`verify` without `--repair`).
    static let readOnlyCommands: Set<String> = ["images", "ps", "inspect", "verify", "save", "export"]

    /// Another user's repository: refused (`refusal`) unless its owner is trusted and the command
    /// only reads; then used with a warning.
    static func useForeignRepository(_ context: CommandContext, command: String, arguments: [String], refusal: String) throws {
        let trusted = context.configuration["trusted_repository_owners"].split(whereSeparator: { $0 == "," || $0.isWhitespace })
            .map(String.init)
        guard let owner = context.repository.trustedForeignOwner(trusted) else { throw CommandFailure(refusal) }
        guard readOnlyCommands.contains(command), !(command == "verify" && arguments.contains("--repair")) else {
            throw CommandFailure(
                "repository \(context.repository.topDirectory) belongs to \(owner): trusted for reading only (trusted_repository_owners), '\(command)' would change it; use a repository of your own (--repo, UDOCKER_DIR)"
            )
        }
        context.messages.warning(
            "reading repository \(context.repository.topDirectory) of \(owner) (trusted_repository_owners): read-only, its owner can change what you see"
        )
    }

    /// ArgumentParser's message as one line: the first line, and a value list that follows a
    /// line ending in ':' (`- P1`, `- P2`, …) folded into it.
    static func oneLine(_ message: String) -> String {
        let lines = message.split(separator: "\n").map { $0.trimmed(where: \.isBlank) }.filter { !$0.isEmpty }
        guard let first = lines.first else { return "syntax error" }
        guard first.hasSuffix(":") else { return first }
        let values = lines.dropFirst().prefix { $0.hasPrefix("- ") }.map { String($0.dropFirst(2)) }
        return values.isEmpty ? String(first.dropLast()) : first + " " + values.joined(separator: ", ")
    }

    /// Prints the one error line (with `ErrorAdvice`: `cause` is the error, `repository` the
    /// command's, UDOCKER_DIR's default when not known yet) and returns `status`.
    static func fail(_ message: String, status: Int32 = 1, cause: (any Error)? = nil, repository: String? = nil) -> Int32 {
        let repository = repository ?? "\(FileInfo.homeDirectory())/.udocker"
        let message = ErrorAdvice.annotate(
            message, rootCause: cause.map(ErrorAdvice.rootCause), repository: repository, room: ErrorAdvice.room(repository))
        Output().error(message)
        return status
    }
}

extension UDockerCommand {
    /// Argument preprocessing before ArgumentParser sees them; `run` overrides it.
    static func normalize(_ args: [String]) -> [String] {
        ArgumentNormalizer.dropEmptyValues(ArgumentNormalizer.splitShortEquals(args), valued: ArgumentNormalizer.typedOptions)
    }
}
