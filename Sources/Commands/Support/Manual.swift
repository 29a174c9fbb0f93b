import ContainerModel
import ArgumentParser
import Engines
import FoundationEssentials
import Store
import UDockerSystem

/// The man page and the shell completions, generated from the command definitions (the same
/// `UDocker.commands` table the dispatcher uses), so a new command or option appears in both
/// without anyone editing them. `make install` writes them under `$PREFIX/share`:
///
///     udocker _manpage                  → share/man/man1/udocker.1
///     udocker _completion bash|zsh|fish → bash-completion, zsh site-functions, fish completions
enum Manual {
    /// The generator entry points, handled before the command table (not listed in help).
    static func run(_ name: String, _ arguments: [String]) -> Int32? {
        switch name {
        case "_manpage":
            print(manPage(), terminator: "")
            return 0
        case "_completion":
            guard arguments.count == 1, let shell = CompletionShell(rawValue: arguments[0]) else {
                return UDocker.fail("usage: udocker _completion bash|zsh|fish")
            }
            print(ManualRoot.completionScript(for: shell), terminator: "")
            return 0
        default:
            return nil
        }
    }

    /// Every command name in the table, sorted.
    static var commandNames: [String] { UDocker.commands.keys.sorted() }

    // MARK: man page

    static func manPage() -> String {
        var out = """
            .TH UDOCKER 1 "" "udocker (Swift), compatible with udocker \(UDocker.version)" "User Commands"
            .SH NAME
            udocker \\- run Docker and OCI container images without root privileges
            .SH SYNOPSIS
            .B udocker
            [\\fIgeneral options\\fR] \\fICOMMAND\\fR [\\fIcommand options\\fR] [\\fIarguments\\fR]
            .SH DESCRIPTION
            udocker pulls images from Docker/OCI registries into a per-user repository
            (\\fI~/.udocker\\fR or \\fB$UDOCKER_DIR\\fR), flattens them into container directories and runs
            them through an unprivileged execution engine. The repository layout, commands, options,
            environment variables and exit codes are those of the Python udocker \(UDocker.version).
            Options of a command come after the command name; for \\fBrun\\fR only the options before
            the container name are udocker's, everything after it is the command to run.
            .SH GENERAL OPTIONS
            These come before the command.

            """
        for (name, help) in generalOptions {
            out += ".TP\n\\fB\(roff(name))\\fR\n\(roff(help))\n"
        }
        out += ".SH COMMANDS\n"
        for info in commandInfos() {
            out += ".SS \(roff(info.name))\n"
            if let abstract = info.abstract, !abstract.isEmpty { out += roff(abstract) + "\n" }
            if let usage = info.discussion, !usage.isEmpty { out += ".PP\n.B udocker\n\(roff(usage))\n" }
            for option in info.options {
                out += ".TP\n\\fB\(roff(option.names.joined(separator: ", ")))\\fR"
                if let value = option.valueName { out += "=\\fI\(roff(value))\\fR" }
                out += "\n\(roff(option.help.isEmpty ? "(no description)" : option.help))\n"
            }
            if !info.positionals.isEmpty {
                out += ".TP\narguments: \\fI\(roff(info.positionals.joined(separator: " ")))\\fR\n"
            }
        }
        out += ".SH EXECUTION MODES\nChosen per container with \\fBudocker setup --execmode=MODE CONTAINER\\fR.\n"
        for mode in ExecutionMode.allCases {
            out += ".TP\n\\fB\(mode.rawValue)\\fR\n\(roff(mode.summary))\n"
        }
        out += ".SH ENVIRONMENT\n"
        for (name, help) in environmentVariables {
            out += ".TP\n\\fB\(roff(name))\\fR\n\(roff(help))\n"
        }
        out += """
            .SH EXIT STATUS
            .TP
            \\fB0\\fR
            success.
            .TP
            \\fB1\\fR
            an error: the one line printed on standard error (\\fBError: ...\\fR) says what failed and what to do.
            Among them: no space left (with the MiB free on the filesystem of \\fBUDOCKER_DIR\\fR), no inodes
            left, disk quota exceeded (see it with \\fBquota -s\\fR or \\fBlfs quota\\fR), then remove containers
            or images (\\fBudocker rm\\fR, \\fBudocker rmi\\fR, \\fBudocker rmi --prune\\fR) or move \\fBUDOCKER_DIR\\fR;
            a registry rate limit (HTTP 429, with the wait the registry asked for); \\fBlogin\\fR refused by the
            registry (nothing is stored); an unsafe keystore (\\fBchmod 600\\fR); a missing engine tool
            (proot, runc, libfakechroot: \\fBudocker install\\fR or the distribution package).
            .TP
            \\fB2\\fR
            \\fBrun\\fR could not start the command (bad volume, working directory or command), as in udocker;
            also an engine that cannot start, e.g. N1 with user namespaces disabled (the line names the sysctl,
            \\fBuser.max_user_namespaces\\fR, \\fBkernel.unprivileged_userns_clone\\fR or
            \\fBkernel.apparmor_restrict_unprivileged_userns\\fR, and suggests P1).
            .TP
            \\fBN\\fR
            \\fBrun\\fR returns the exit status of the command; 128+N when it was killed by signal N
            (130 after SIGINT, 143 after SIGTERM).
            .SH FILES
            .TP
            \\fI~/.udocker/\\fR
            the repository: \\fIrepos/\\fR (image tags), \\fIlayers/\\fR (blobs), \\fIcontainers/\\fR, \\fIudocker.conf\\fR.
            .TP
            \\fI/etc/udocker.conf\\fR, \\fI~/.udocker/udocker.conf\\fR, \\fI$UDOCKER_DIR/udocker.conf\\fR
            configuration, in increasing precedence (then \\fB--config\\fR, the environment, general options).
            .SH SEE ALSO
            The README of this project; the udocker user manual (indigo-dc/udocker).

            """
        return out
    }

    static let generalOptions: [(String, String)] = [
        ("-h, --help", "print the help (with a command: that command's help)"),
        ("-V, --version", "print the version"),
        ("-D, --debug", "debug messages"),
        ("-q, --quiet", "only errors"),
        ("--insecure", "allow plain HTTP and unverified TLS to registries that are not on loopback"),
        ("--repo=DIR", "use the repository in DIR (see mkrepo)"),
        ("--config=FILE", "read this configuration file after the default ones"),
        ("--allow-root", "allow running as root"),
    ]

    static let environmentVariables: [(String, String)] = [
        ("UDOCKER_DIR", "the repository (default ~/.udocker)"),
        ("UDOCKER_BIN, UDOCKER_LIB", "where engine tools (proot, runc, libfakechroot) are looked for"),
        ("UDOCKER_REPOS, UDOCKER_LAYERS, UDOCKER_CONTAINERS", "parts of the repository in other places"),
        ("UDOCKER_TMP", "temporary files"),
        ("UDOCKER_KEYSTORE", "the credentials file of login: an absolute path, or a name under ~/.udocker (not UDOCKER_DIR)"),
        ("DOCKER_CONFIG", "directory of Docker's config.json, whose logins pull uses after the keystore"),
        ("UDOCKER_LOGLEVEL", "verbosity (0-5)"),
        ("UDOCKER_REGISTRY, UDOCKER_INDEX", "registry and index used for names without a host"),
        ("UDOCKER_DEFAULT_EXECUTION_MODE", "execution mode of containers that have none"),
        ("UDOCKER_CONTAINER_STORAGE", "flat (default) or overlay containers"),
        ("UDOCKER_USE_PROOT_EXECUTABLE, UDOCKER_USE_RUNC_EXECUTABLE", "the engine tool to use"),
        ("UDOCKER_FAKECHROOT_SO", "the libfakechroot.so of the F modes"),
        (
            "UDOCKER_TRANSFER_STALL_TIMEOUT, UDOCKER_TRANSFER_MIN_RATE, UDOCKER_TRANSFER_RATE_WINDOW",
            "a download is given up after N seconds without data (30), or under N bytes/s (1024) over N seconds (60); 0: off"
        ),
        ("UDOCKER_PULL_TIMEOUT", "seconds a whole pull may take (0: no limit); the next pull resumes"),
        (
            "UDOCKER_TRUSTED_REPOSITORY_OWNERS",
            "users (and @groups) whose repository may be read (images, ps, inspect, verify, save, export)"
        ),
    ]

    // MARK: the definitions, read through swift-argument-parser's own JSON description

    struct OptionInfo { var names: [String]; var valueName: String?; var help: String }
    struct CommandInfo {
        var name: String; var abstract: String?; var discussion: String?; var options: [OptionInfo]; var positionals: [String]
    }

    static func commandInfos() -> [CommandInfo] {
        commandNames.compactMap { name in
            guard let type = UDocker.commands[name],
                let json = JSONAny.object(Array(type._dumpHelp().utf8)),
                let command = json["command"] as? [String: Any]
            else { return nil }
            var info = CommandInfo(
                name: name, abstract: command["abstract"] as? String,
                discussion: command["discussion"] as? String, options: [], positionals: [])
            for argument in command["arguments"] as? [[String: Any]] ?? [] {
                guard argument["shouldDisplay"] as? Bool ?? true else { continue }
                let names = (argument["names"] as? [[String: Any]] ?? []).compactMap { n -> String? in
                    guard let text = n["name"] as? String, let kind = n["kind"] as? String else { return nil }
                    return kind == "long" ? "--\(text)" : "-\(text)"
                }
                let help = argument["abstract"] as? String ?? ""
                switch argument["kind"] as? String {
                case "positional":
                    info.positionals.append(argument["valueName"] as? String ?? "arg")
                case "option":
                    info.options.append(OptionInfo(names: names, valueName: argument["valueName"] as? String, help: help))
                default:
                    if !names.contains("--help") && !names.contains("-h") {
                        info.options.append(OptionInfo(names: names, valueName: nil, help: help))
                    }
                }
            }
            return info
        }
    }

    /// Escapes text for roff: backslashes, hyphens, characters outside ASCII (as `\[uXXXX]`, which
    /// groff reads whatever the input encoding), and a leading `.` or `'` that would start a request.
    static func roff(_ text: String) -> String {
        text.split(separator: "\n", omittingEmptySubsequences: false).map { line -> String in
            var escaped = ""
            for scalar in line.unicodeScalars {
                switch scalar {
                case "\\": escaped += "\\e"
                case "-": escaped += "\\-"
                case _ where scalar.value > 0x7e || scalar.value < 0x20:
                    escaped += "\\[u" + Format.padded(String(scalar.value, radix: 16, uppercase: true), width: 4, with: "0") + "]"
                default: escaped.unicodeScalars.append(scalar)
                }
            }
            return escaped.hasPrefix(".") || escaped.hasPrefix("'") ? "\\&" + escaped : escaped
        }.joined(separator: "\n")
    }
}

/// A stand-in root command carrying the general options and every command as a subcommand, used
/// only to generate completion scripts (the dispatcher itself is `UDocker.main`).
struct ManualRoot: ParsableCommand {
    static var configuration: CommandConfiguration {
        CommandConfiguration(
            commandName: "udocker", abstract: "run containers without root",
            subcommands: Manual.commandNames.compactMap { UDocker.commands[$0] })
    }
    @Flag(name: [.customShort("D"), .customLong("debug")], help: "debug messages") var debug = false
    @Flag(name: [.customShort("q"), .customLong("quiet")], help: "only errors") var quiet = false
    @Flag(name: .customLong("insecure"), help: "allow insecure registries") var insecure = false
    @Flag(name: .customLong("allow-root"), help: "allow running as root") var allowRoot = false
    @Flag(name: [.customShort("V"), .customLong("version")], help: "print the version") var version = false
    @Option(name: .customLong("repo"), help: "repository directory", completion: .directory) var repo: String?
    @Option(name: .customLong("config"), help: "configuration file", completion: .file()) var config: String?
}
