import ContainerModel
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
    var join: String?
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
    /// Where an option's value goes: a setter per option. (Key paths were the first choice; the
    /// runtime builds each key path object on first use, 6 % of a run for the 38 of them.)
    enum Slot: Sendable {
        case flag(@Sendable (inout RunArguments) -> Void)
        case value(@Sendable (inout RunArguments, String) -> Void)
        case values(@Sendable (inout RunArguments, String) -> Void)
        case pull
        case storage

        var takesValue: Bool { if case .flag = self { false } else { true } }
        var repeats: Bool { if case .values = self { true } else { false } }
    }

    /// Every option of `run` with all its spellings: the one table of the fast parser and of
    /// `RunCommand.valuedOptions` (a test checks it against `RunCommand`'s definition).
    static let options: [(names: [String], slot: Slot)] = [
        (["--rm"], .flag({ $0.rm = true })),
        (["-w", "--workdir"], .value({ $0.workdir = $1 })),
        (["-u", "--user"], .value({ $0.user = $1 })),
        (["-v", "--volume"], .values({ $0.volumes.append($1) })),
        (["--novol"], .values({ $0.novol.append($1) })),
        (["-e", "--env"], .values({ $0.env.append($1) })),
        (["--env-file"], .values({ $0.envFile.append($1) })),
        (["--hostauth"], .flag({ $0.hostauth = true })),
        (["--containerauth"], .flag({ $0.containerauth = true })),
        (["--nosysdirs"], .flag({ $0.nosysdirs = true })),
        (["--nometa"], .flag({ $0.nometa = true })),
        (["--hostenv"], .flag({ $0.hostenv = true })),
        (["--bindhome"], .flag({ $0.bindhome = true })),
        (["--nobanner"], .flag({ $0.nobanner = true })),
        (["--dri"], .flag({ $0.dri = true })),
        (["--nvidia"], .flag({ $0.nvidia = true })),
        (["--gpus"], .value({ $0.gpus = $1 })),
        (["--cpuset-cpus"], .value({ $0.cpuset = $1 })),
        (["--name"], .value({ $0.name = $1 })),
        (["--kernel"], .value({ $0.kernel = $1 })),
        (["--entrypoint"], .value({ $0.entrypoint = $1 })),
        (["--platform"], .value({ $0.platform = $1 })),
        (["--storage"], .storage),
        (["--mpi"], .value({ $0.mpi = $1 })),
        (["--join"], .value({ $0.join = $1 })),
        (["--pull"], .pull),
        (["--registry"], .value({ $0.registry = $1 })),
        (["--index"], .value({ $0.index = $1 })),
        (["--httpproxy"], .value({ $0.httpproxy = $1 })),
        (["--device"], .values({ $0.device.append($1) })),
        (["--location"], .value({ $0.location = $1 })),
        (["-p", "--publish"], .values({ $0.publish.append($1) })),
        (["-P", "--publish-all", "--netcoop"], .flag({ $0.publishAll = true })),
        (["--volumes-from"], .values({ $0.volumesFrom.append($1) })),
        (["--dns"], .values({ $0.dns.append($1) })),
        (["--dns-search"], .values({ $0.dnsSearch.append($1) })),
        (["-i"], .flag({ $0.interactive = true })),
        (["-t"], .flag({ $0.tty = true })),
        (["-a"], .flag({ $0.attach = true })),
    ]

    /// Spelling → index in `options`.
    static let optionIndex: [String: Int] = {
        var index: [String: Int] = [:]
        for (i, option) in options.enumerated() { for name in option.names { index[name] = i } }
        return index
    }()

    /// The spellings that take a value.
    static let valuedNames = Set(options.filter { $0.slot.takesValue }.flatMap { $0.names })

    /// Reads a `run` command line after `RunCommand.normalize`; `nil` for anything it does not
    /// handle with certainty (unknown or repeated options, combined short flags, a missing or
    /// invalid value, `--help`, …), which ArgumentParser then parses and reports.
    static func parse(_ args: [String]) -> RunArguments? {
        var result = RunArguments()
        var seen: UInt64 = 0  // options given once, by table index (a bit mask: no Set<Int> to instantiate)
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
            if !slot.repeats {
                guard seen & (1 << n) == 0 else { return nil }
                seen |= 1 << n
            }
            if !slot.takesValue {
                guard value == nil, case .flag(let set) = slot else { return nil }
                set(&result)
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
            case .value(let set), .values(let set): set(&result, value)
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
