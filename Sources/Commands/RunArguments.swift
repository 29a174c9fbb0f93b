import Store

/// What `udocker run` was asked to do, as plain values. `RunCommand` (the ArgumentParser
/// definition: help, man page, completions, error messages) converts into it; `parse` reads the
/// common command lines directly, sparing each run ArgumentParser's reflection (half of a
/// run's CPU time, see docs/benchmarks.md).
struct RunArguments: Equatable {
    var rm = false
    var workdir: String?
    var user: String?
    var volumes: [String] = []
    var novol: [String] = []
    var env: [String] = []
    var envFile: [String] = []
    var hostauth = false
    var containerauth = false
    var nosysdirs = false
    var nometa = false
    var hostenv = false
    var bindhome = false
    var nobanner = false
    var dri = false
    var nvidia = false
    var gpus: String?
    var cpuset: String?
    var name: String?
    var kernel: String?
    var entrypoint: String?
    var platform: String?
    var storage: ContainerStorage?
    var mpi: String?
    var pull: PullPolicy = .missing
    var registry: String?
    var index: String?
    var httpproxy: String?
    var device: [String] = []
    var location: String?
    var publish: [String] = []
    var publishAll = false
    var volumesFrom: [String] = []
    var dns: [String] = []
    var dnsSearch: [String] = []
    var interactive = false
    var tty = false
    var attach = false
    var target = ""
    /// The command and its arguments (a `--` that separated them from the target is dropped).
    var command: [String] = []
}

extension RunArguments {
    /// Where an option's value goes.
    enum Slot: Sendable {
        case flag(WritableKeyPath<RunArguments, Bool> & Sendable)
        case value(WritableKeyPath<RunArguments, String?> & Sendable)
        case values(WritableKeyPath<RunArguments, [String]> & Sendable)
        case pull
        case storage

        var takesValue: Bool { if case .flag = self { false } else { true } }
        var repeats: Bool { if case .values = self { true } else { false } }
    }

    /// Every option of `run` with all its spellings: the one table of the fast parser and of
    /// `RunCommand.valuedOptions` (a test checks it against `RunCommand`'s definition).
    static let options: [(names: [String], slot: Slot)] = [
        (["--rm"], .flag(\.rm)),
        (["-w", "--workdir"], .value(\.workdir)),
        (["-u", "--user"], .value(\.user)),
        (["-v", "--volume"], .values(\.volumes)),
        (["--novol"], .values(\.novol)),
        (["-e", "--env"], .values(\.env)),
        (["--env-file"], .values(\.envFile)),
        (["--hostauth"], .flag(\.hostauth)),
        (["--containerauth"], .flag(\.containerauth)),
        (["--nosysdirs"], .flag(\.nosysdirs)),
        (["--nometa"], .flag(\.nometa)),
        (["--hostenv"], .flag(\.hostenv)),
        (["--bindhome"], .flag(\.bindhome)),
        (["--nobanner"], .flag(\.nobanner)),
        (["--dri"], .flag(\.dri)),
        (["--nvidia"], .flag(\.nvidia)),
        (["--gpus"], .value(\.gpus)),
        (["--cpuset-cpus"], .value(\.cpuset)),
        (["--name"], .value(\.name)),
        (["--kernel"], .value(\.kernel)),
        (["--entrypoint"], .value(\.entrypoint)),
        (["--platform"], .value(\.platform)),
        (["--storage"], .storage),
        (["--mpi"], .value(\.mpi)),
        (["--pull"], .pull),
        (["--registry"], .value(\.registry)),
        (["--index"], .value(\.index)),
        (["--httpproxy"], .value(\.httpproxy)),
        (["--device"], .values(\.device)),
        (["--location"], .value(\.location)),
        (["-p", "--publish"], .values(\.publish)),
        (["-P", "--publish-all", "--netcoop"], .flag(\.publishAll)),
        (["--volumes-from"], .values(\.volumesFrom)),
        (["--dns"], .values(\.dns)),
        (["--dns-search"], .values(\.dnsSearch)),
        (["-i"], .flag(\.interactive)),
        (["-t"], .flag(\.tty)),
        (["-a"], .flag(\.attach)),
    ]

    /// Spelling → index in `options`.
    static let optionIndex: [String: Int] = {
        var index: [String: Int] = [:]
        for (i, option) in options.enumerated() { for name in option.names { index[name] = i } }
        return index
    }()

    /// The spellings that take a value.
    static let valuedNames = Set(options.filter(\.slot.takesValue).flatMap(\.names))

    /// Reads a `run` command line after `RunCommand.normalize`; `nil` for anything it does not
    /// handle with certainty (unknown or repeated options, combined short flags, a missing or
    /// invalid value, `--help`, …), which ArgumentParser then parses and reports.
    static func parse(_ args: [String]) -> RunArguments? {
        var result = RunArguments()
        var seen = Set<Int>()
        var hasTarget = false
        var i = 0
        while i < args.count {
            let a = args[i]
            i += 1
            if a == "--" {
                // Everything after it is positional: the target (unless given), then the command.
                // After the target it is normalize's separator (a user's own `--` after the
                // target stays in the command, as ArgumentParser leaves it); before the target
                // it is the user's, and normalize's own follows the target.
                var rest = args[i...]
                if !hasTarget {
                    guard let t = rest.first, !t.isEmpty else { return nil }
                    result.target = t
                    rest = rest.dropFirst()
                    if rest.first == "--" { rest = rest.dropFirst() }
                }
                result.command = Array(rest)
                return result
            }
            guard a.utf8.first == UInt8(ascii: "-") else {
                // The target: normalize leaves only `--` and the command after it.
                guard !hasTarget, !a.isEmpty else { return nil }
                result.target = a
                hasTarget = true
                continue
            }
            if hasTarget { return nil }
            var name = Substring(a)
            var value: String?
            if a.hasPrefix("--"), let eq = a.firstIndex(of: "=") {
                name = a[..<eq]
                value = String(a[a.index(after: eq)...])
            } else if !a.hasPrefix("--") && a.utf8.count != 2 {
                return nil  // `-it`, `-wdir`, `-`: ArgumentParser's rules
            }
            guard let n = optionIndex[String(name)] else { return nil }
            let slot = options[n].slot
            if !slot.repeats && !seen.insert(n).inserted { return nil }
            if !slot.takesValue {
                guard value == nil, case .flag(let path) = slot else { return nil }
                result[keyPath: path] = true
                continue
            }
            if value == nil {
                guard i < args.count, args[i].utf8.first != UInt8(ascii: "-") else { return nil }
                value = args[i]
                i += 1
            }
            guard let value else { return nil }
            switch slot {
            case .flag: return nil
            case .value(let path): result[keyPath: path] = value
            case .values(let path): result[keyPath: path].append(value)
            case .pull:
                guard let policy = PullPolicy(rawValue: value) else { return nil }
                result.pull = policy
            case .storage:
                guard let storage = ContainerStorage(argument: value) else { return nil }
                result.storage = storage
            }
        }
        return result
    }
}
