@testable import Commands
import Foundation
import Testing

/// `run`'s own parser (`RunArguments.parse`) against ArgumentParser's reading of `RunCommand`:
/// wherever the fast parser answers, its answer is ArgumentParser's; where ArgumentParser
/// refuses, the fast parser leaves it to ArgumentParser (whose message the user then sees).
@Suite struct RunArgumentsTests {
    /// ArgumentParser's reading of a raw `run` command line, `nil` when it refuses it.
    static func reference(_ raw: [String]) -> RunArguments? {
        (try? RunCommand.parse(RunCommand.normalize(raw)))?.arguments
    }

    static func fast(_ raw: [String]) -> RunArguments? { RunArguments.parse(RunCommand.normalize(raw)) }

    /// Command lines the fast parser must read itself, each as ArgumentParser does.
    static let common: [[String]] = [
        ["c"], ["c", "/bin/true"], ["--rm", "c"], ["c", "ls", "-la"], ["c", "--", "ls"], ["--", "c", "ls"],
        ["-e", "A=1", "c", "env", "-i"], ["-e=A=1", "-e", "B", "--env=C=3", "--env", "D=4", "c"],
        ["-v", "/a:/b", "-v=/c", "--volume=/d:/e", "--volume", "/f", "c", "sh", "-c", "echo $X; exit 3"],
        ["--novol=/proc", "--novol", "/sys", "c"], ["--env-file=/x", "--env-file", "/y", "c"],
        ["-w", "/tmp", "c"], ["-w=/tmp", "c"], ["--workdir=/tmp", "c"], ["--workdir", "/tmp", "c"],
        ["-u", "1000:1000", "c"], ["--user=nobody", "c"], ["--user", "0", "c"], ["-u=root", "c"],
        ["--hostauth", "--containerauth", "--nosysdirs", "--nometa", "--hostenv", "--bindhome", "--nobanner", "c"],
        ["--dri", "--nvidia", "--gpus=all", "c"], ["--gpus", "0,1", "c"], ["--cpuset-cpus=1,2-3", "c"], ["--cpuset-cpus", "0", "c"],
        ["--name=x", "img"], ["--name", "x", "--pull=reuse", "img", "hostname"], ["--kernel=6.1.0", "c"], ["--kernel", "5.4", "c"],
        ["--entrypoint=", "c"], ["--entrypoint", "", "c"], ["--entrypoint=/bin/sh", "c", "-c", "x"], ["--entrypoint", "sh", "c"],
        ["--platform=linux/arm64", "img"], ["--platform", "linux/amd64", "img"],
        ["--storage=overlay", "img"], ["--storage", "flat", "img"], ["--storage=OVERLAY", "img"], ["--storage=", "img"],
        ["--mpi=host", "c"], ["--mpi", "none", "c"], ["--mpi=other", "c"],
        ["--pull=never", "img"], ["--pull", "always", "img"], ["--pull=missing", "img"], ["--pull", "", "img"],
        ["--registry=https://r:5000", "--index", "https://i", "--httpproxy=socks5://p:1", "img"],
        ["--device=/dev/fuse", "--device", "/dev/kvm", "c"], ["--location=/tmp/root", "x", "ls"], ["--location", "/r"],
        ["-p", "80:80", "--publish=8080:80", "-P", "c"], ["--publish-all", "c"], ["--netcoop", "c"],
        ["--volumes-from=a", "--dns=1.1.1.1", "--dns", "8.8.8.8", "--dns-search=x", "--dns-search", "y", "c"],
        ["-i", "-t", "-a", "c"], ["-i", "c", "sh"], ["--user=", "--workdir=", "-w=", "c"], ["-v", "", "c"],
        ["-e", "A=1", "--", "c", "ls"], ["c", "--rm", "-v", "/x"], ["c", "-h"], ["c", "--help"], ["c", "--", "--", "x"],
        ["-e", "A=--x", "c"], ["--env=-x", "c"], ["c", ""], ["c", "-", "x"], [],
    ]

    /// Command lines ArgumentParser refuses: the fast parser must not accept them.
    static let invalid: [[String]] = [
        ["--bogus", "c"], ["-x", "c"], ["-ix", "c"], ["--pull=sometimes", "img"], ["--pull", "NEVER", "img"],
        ["--storage=deep", "img"], ["--storage", "x", "img"], ["-w"], ["--workdir"], ["--rm=yes", "c"], ["--location"],
        ["--env-file"], ["-v", "-e", "c"], ["--nvidia=1", "c"], ["-h"], ["--help", "c"], ["-h", "c", "ls"],
    ]

    /// Command lines ArgumentParser accepts by rules of its own (combined short flags, the last
    /// of a repeated option or flag wins): left to it.
    static let leftToArgumentParser: [[String]] = [
        ["-it", "c"], ["--name=a", "--name=b", "img"], ["--rm", "--rm", "c"], ["-u", "a", "--user", "b", "c"], ["-i", "-i", "c"],
        ["--pull=never", "--pull=always", "img"],
    ]

    /// Every spelling of every option in the table, alone before a container.
    static var generated: [[String]] {
        RunArguments.options.enumerated().flatMap { i, option -> [[String]] in
            let value =
                switch option.slot {
                case .pull: "never"
                case .storage: "overlay"
                default: "val\(i)"
                }
            return option.names.flatMap { name -> [[String]] in
                guard option.slot.takesValue else { return [[name, "c"]] }
                return [[name + "=" + value, "c"], [name, value, "c", "cmd"], [name + "=", "c"]]
            }
        }
    }

    @Test("the table fits the parser's 64-bit set of options given once")
    func tableFitsTheMask() { #expect(RunArguments.options.count <= 64) }

    @Test func theCommonFormsAreReadAsArgumentParserReadsThem() throws {
        let corpus = Self.common + Self.generated
        #expect(corpus.count >= 60)
        var fast = 0
        for raw in corpus {
            let reference = Self.reference(raw)
            guard let parsed = Self.fast(raw) else { continue }
            fast += 1
            #expect(parsed == reference, "\(raw): fast \(parsed), ArgumentParser \(String(describing: reference))")
        }
        for raw in Self.common {
            #expect(Self.fast(raw) != nil, "the fast parser leaves a common form to ArgumentParser: \(raw)")
        }
        #expect(fast >= 100, "only \(fast) of \(corpus.count) command lines were read by the fast parser")
    }

    @Test func everyOptionInTheTableHasAnEffect() throws {
        let plain = try #require(Self.fast(["c"]))
        for raw in Self.generated where !raw[0].hasSuffix("=") {
            let parsed = try #require(Self.fast(raw), "\(raw)")
            #expect(parsed != plain, "\(raw) changed nothing")
        }
    }

    /// The options that steer the request, not the engine: where the container comes from
    /// (pull, create, registry, `--location`), what happens after the run (`--rm`), and udocker
    /// options that are accepted and ignored. Every other option must reach `RunOptions`.
    static let notForTheEngine: Set<String> = [
        "--rm", "--name", "--platform", "--storage", "--pull", "--registry", "--index", "--httpproxy", "--location",
        "--publish", "--publish-all", "--volumes-from", "--dns", "--dns-search", "-i", "-t", "-a",
    ]

    /// A value each option accepts (the run refuses another `--mpi`).
    static func sampleValue(_ names: [String]) -> String {
        names.contains("--mpi")
            ? "host"
            : names.contains("--pull")
                ? "never" : names.contains("--storage") ? "overlay" : names.contains("--join") ? "no" : "val"
    }

    @Test("every run option reaches RunOptions, unless it steers only the request")
    func everyOptionReachesTheEngine() throws {
        let plain = try #require(Self.fast(["c"])).runOptions(driDirectories: ["/dri"])
        for option in RunArguments.options {
            let name = option.names.last ?? ""
            let raw = option.slot.takesValue ? ["\(name)=\(Self.sampleValue(option.names))", "c"] : [name, "c"]
            let options = try #require(Self.fast(raw), "\(raw)").runOptions(driDirectories: ["/dri"])
            if option.names.contains(where: Self.notForTheEngine.contains) {
                #expect(options == plain, "\(name) reaches RunOptions: take it off notForTheEngine")
            } else {
                #expect(options != plain, "\(name) does not reach RunOptions: set it in RunArguments.runOptions")
            }
        }
        #expect(throws: CommandFailure.self) { try Self.fast(["--mpi=other", "c"])?.runOptions(driDirectories: []) }
        #expect(throws: CommandFailure.self) { try Self.fast(["--join=maybe", "c"])?.runOptions(driDirectories: []) }
        // --join=yes outside a job step (no launcher variables) is refused in one line.
        #expect(throws: CommandFailure.self) { try Self.fast(["--join=yes", "c"])?.runOptions(driDirectories: []) }
    }

    @Test func whatArgumentParserRefusesIsLeftToIt() {
        for raw in Self.invalid {
            #expect(Self.reference(raw) == nil, "ArgumentParser accepts \(raw): not an invalid case")
            #expect(Self.fast(raw) == nil, "the fast parser accepts \(raw), which ArgumentParser refuses")
        }
        for raw in Self.leftToArgumentParser {
            #expect(Self.reference(raw) != nil, "ArgumentParser refuses \(raw)")
            #expect(Self.fast(raw) == nil, "the fast parser reads \(raw), a form it leaves to ArgumentParser")
        }
    }

    @Test func theDispatchHookAnswersForRunAndVersionOnly() {
        #expect(RunCommand.fastParse(RunCommand.normalize(["--rm", "c", "ls"])) as? RunArguments == Self.reference(["--rm", "c", "ls"]))
        #expect(RunCommand.fastParse(RunCommand.normalize(["-it", "c"])) == nil)
        #expect((VersionCommand.fastParse([]) as? VersionCommand.Action)?.engines == false)
        #expect((VersionCommand.fastParse(["--engines"]) as? VersionCommand.Action)?.engines == true)
        #expect(VersionCommand.fastParse(["x"]) == nil, "version with arguments is ArgumentParser's to refuse")
        #expect(PullCommand.fastParse(["img"]) == nil, "other commands parse with ArgumentParser")
    }

    /// The declared options of `run` (ArgumentParser's description of `RunCommand`): names,
    /// whether they take a value and whether they repeat.
    static func declared() throws -> Set<String> {
        let json = try #require(try JSONSerialization.jsonObject(with: Data(RunCommand._dumpHelp().utf8)) as? [String: Any])
        let command = try #require(json["command"] as? [String: Any])
        let arguments = try #require(command["arguments"] as? [[String: Any]])
        return Set(
            arguments.compactMap { a -> String? in
                let kind = a["kind"] as? String ?? ""
                guard kind != "positional" else { return nil }
                let names = ((a["names"] as? [[String: Any]]) ?? []).compactMap { n -> String? in
                    guard let name = n["name"] as? String else { return nil }
                    return (n["kind"] as? String) == "short" ? "-\(name)" : "--\(name)"
                }
                guard !names.contains("--help") else { return nil }
                return "\(names.sorted()) \(kind == "flag" ? "flag" : "value") \((a["isRepeating"] as? Bool) == true ? "repeats" : "once")"
            })
    }

    @Test func theTableIsRunCommandsOptions() throws {
        let table = Set(
            RunArguments.options.map {
                "\($0.names.sorted()) \($0.slot.takesValue ? "value" : "flag") \($0.slot.repeats ? "repeats" : "once")"
            })
        let declared = try Self.declared()
        #expect(declared.subtracting(table).isEmpty, "options of RunCommand the fast parser does not know: \(declared.subtracting(table))")
        #expect(
            table.subtracting(declared).isEmpty, "options of the fast parser RunCommand does not declare: \(table.subtracting(declared))")
    }
}
