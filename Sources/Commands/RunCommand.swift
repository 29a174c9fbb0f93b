import ContainerModel
import ArgumentParser
import Store

/// `run`'s ArgumentParser definition (help, man page, completions, error messages); what it
/// does is `RunArguments`, which also reads the common command lines without ArgumentParser.
struct RunCommand: UDockerCommand {
    // `_superCommandName` spares each run ArgumentParser's search for `--generate-completion-script`
    // (two extra reflective parses, a quarter of a run's CPU time; udocker has no such option, the
    // scripts come from `udocker _completion`); the usage line is spelled out as generated without it.
    static let configuration = CommandConfiguration(
        commandName: "run", _superCommandName: "udocker", abstract: "Run a container, or pull, create and run an image",
        usage: "run [<options>] [<target>] [<command> ...]",
        discussion: """
            run [options] <container-id|name|repo/image:tag> [command [args...]]
            Options are only recognised before the container; everything after it is the command.
            """)
    @Flag(name: .customLong("rm"), help: "delete the container after it exits (unless protected)") var rm = false
    @Option(name: [.customShort("w"), .customLong("workdir")], help: "working directory") var workdir: String?
    @Option(name: [.customShort("u"), .customLong("user")], help: "user: name, uid or uid:gid") var user: String?
    @Option(name: [.customShort("v"), .customLong("volume")], help: "host[:container] bind (repeatable)") var volumes: [String] = []
    @Option(name: .customLong("novol"), help: "drop this volume (e.g. --novol=/proc)") var novol: [String] = []
    @Option(name: [.customShort("e"), .customLong("env")], help: "K=V, or K to copy the host value (repeatable)") var env: [String] = []
    @Option(name: .customLong("env-file"), help: "file of K=V lines") var envFile: [String] = []
    @Flag(name: .customLong("hostauth"), help: "use the host passwd and group") var hostauth = false
    @Flag(name: .customLong("containerauth"), help: "use the container passwd and group as they are") var containerauth = false
    @Flag(name: .customLong("nosysdirs"), help: "do not bind /dev /proc /sys …") var nosysdirs = false
    @Flag(name: .customLong("nometa"), help: "ignore the image metadata") var nometa = false
    @Flag(name: .customLong("hostenv"), help: "pass the whole host environment") var hostenv = false
    @Flag(name: .customLong("bindhome"), help: "bind the host home directory") var bindhome = false
    @Flag(name: .customLong("nobanner"), help: "no banner") var nobanner = false
    @Flag(name: .customLong("dri"), help: "bind the host's DRI directories (config dri_list)") var dri = false
    @Flag(name: .customLong("nvidia"), help: "provide the host NVIDIA driver and GPUs (see README, HPC)") var nvidia = false
    @Option(name: .customLong("gpus"), help: "GPUs for --nvidia: all, none or a list (0,1 or UUIDs); implies --nvidia") var gpus: String?
    @Option(name: .customLong("cpuset-cpus"), help: "CPUs, e.g. 1,2-3") var cpuset: String?
    @Option(name: .customLong("name"), help: "name the container (when running an image)") var name: String?
    @Option(name: .customLong("kernel"), help: "P modes: emulated kernel release (proot -k)") var kernel: String?
    @Option(name: .customLong("entrypoint"), help: "override the entrypoint (\"\" drops it)") var entrypoint: String?
    @Option(name: .customLong("platform"), help: "platform for the implicit pull") var platform: String?
    @Option(name: .customLong("storage"), help: "flat or overlay, for the implicit create") var storage: ContainerStorage?
    @Option(name: .customLong("mpi"), help: "host: bind the host's MPI libraries over the container's; none: skip the MPI check") var mpi:
        String?
    @Option(name: .customLong("join"), help: "yes or no: the ranks of a job step on a node share one container (N1; default: automatic)")
    var join: String?
    @Option(name: .customLong("pull"), help: "when to pull the image") var pull: PullPolicy = .missing
    @OptionGroup(visibility: .hidden) var registryFlags: RegistryFlags
    @Option(name: .customLong("device"), help: .hidden) var device: [String] = []
    @Option(name: .customLong("location"), help: "run this root directory tree (no repository container, no metadata)") var location:
        String?
    @Option(name: [.customShort("p"), .customLong("publish")], help: .hidden) var publish: [String] = []
    @Flag(name: [.customShort("P"), .customLong("publish-all"), .customLong("netcoop")], help: .hidden) var publishAll = false
    @Option(name: .customLong("volumes-from"), help: .hidden) var volumesFrom: [String] = []
    @Option(name: .customLong("dns"), help: .hidden) var dns: [String] = []
    @Option(name: .customLong("dns-search"), help: .hidden) var dnsSearch: [String] = []
    @Flag(name: .customShort("i"), help: .hidden) var interactive = false
    @Flag(name: .customShort("t"), help: .hidden) var tty = false
    @Flag(name: .customShort("a"), help: .hidden) var attach = false
    @Argument(help: "container or image (with --location: a label, ignored as in udocker)") var target: String = ""
    @Argument(parsing: .captureForPassthrough, help: "command and arguments") var command: [String] = []

    /// The spellings that take a value (from the fast parser's table, the one list of them).
    static var valuedOptions: Set<String> { RunArguments.valuedNames }

    /// Options stop at the container: what follows is the command, passed through untouched.
    static func normalize(_ args: [String]) -> [String] {
        let args = bareDefaultPull(args)
        let (options, tail) = ArgumentNormalizer.splitAtPositionals(args, positionalCount: 1, valued: valuedOptions)
        let head = ArgumentNormalizer.dropEmptyValues(ArgumentNormalizer.splitShortEquals(options), valued: valuedOptions)
        return tail.isEmpty ? head : head + ["--"] + tail
    }

    /// A bare `--pull` (udocker reads it as a flag, "if invoked without option") is
    /// `--pull=missing`, the default, unless a policy follows it (`--pull never`). udocker 1.3.17
    /// takes the next word as the policy whatever it is, so `run --pull IMAGE` ran the command's
    /// first word as the image; here the image stays the image.
    static func bareDefaultPull(_ args: [String]) -> [String] {
        guard args.contains("--pull") else { return args }
        var out = args
        var i = 0
        let valued = valuedOptions
        while i < out.count {
            let a = out[i]
            if a == "--" || !a.hasPrefix("-") { break }
            if a == "--pull" {
                // A policy (any case: `NEVER` stays an error) or `""` (not given) is its value.
                if i + 1 < out.count, out[i + 1].isEmpty || PullPolicy(rawValue: out[i + 1].lowercased()) != nil { i += 2; continue }
                out[i] = "--pull=missing"
            } else if valued.contains(a) {
                i += 1  // its value
            }
            i += 1
        }
        return out
    }

    /// ArgumentParser's result as plain values (`command` without the `--` that normalize puts
    /// before it).
    var arguments: RunArguments {
        var a = RunArguments()
        (a.rm, a.workdir, a.user, a.volumes, a.novol, a.env, a.envFile) = (rm, workdir, user, volumes, novol, env, envFile)
        (a.hostauth, a.containerauth, a.nosysdirs, a.nometa, a.hostenv) = (hostauth, containerauth, nosysdirs, nometa, hostenv)
        (a.bindhome, a.nobanner, a.dri, a.nvidia, a.gpus, a.cpuset) = (bindhome, nobanner, dri, nvidia, gpus, cpuset)
        (a.name, a.kernel, a.entrypoint, a.platform, a.storage, a.mpi, a.pull) = (name, kernel, entrypoint, platform, storage, mpi, pull)
        (a.registry, a.index, a.httpproxy) = (registryFlags.registry, registryFlags.index, registryFlags.httpproxy)
        (a.device, a.location, a.publish, a.publishAll, a.volumesFrom) = (device, location, publish, publishAll, volumesFrom)
        (a.dns, a.dnsSearch, a.interactive, a.tty, a.attach) = (dns, dnsSearch, interactive, tty, attach)
        a.join = join
        a.target = target
        a.command = command.first == "--" ? Array(command.dropFirst()) : command
        return a
    }

    func execute(_ context: CommandContext) async throws -> Int32 { try await arguments.execute(context) }

    static func fastParse(_ args: [String]) -> (any CommandAction)? { RunArguments.parse(args) }
}
