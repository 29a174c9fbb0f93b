import ContainerModel
import ArgumentParser
import FoundationEssentials
import Store
import UDockerSystem

struct PsCommand: UDockerCommand {
    static let configuration = CommandConfiguration(
        commandName: "ps", abstract: "List containers",
        discussion: "ps [-m] [-s] [-p]")
    @Flag(name: .customShort("m"), help: "print the execution mode") var mode = false
    @Flag(name: .customShort("s"), help: "print the size in MB") var size = false
    @Flag(name: .customShort("p"), help: "print the platform") var platform = false

    func execute(_ context: CommandContext) async throws -> Int32 {
        let repo = context.repository
        var header = "CONTAINER ID".padding(36) + " P M "
        if mode { header += "MOD " }
        if size { header += "SIZE " }
        if platform { header += "PLATFORM           " }
        header += "NAMES".padding(18) + " " + "IMAGE".padding(20)
        print(header)
        // The default mode costs host probes (a fork for the user-namespace test): asked only
        // with -m, and only once a listed container has no mode of its own.
        var defaultMode: String?
        for c in repo.listContainers() {
            var line = c.id.padding(36) + " \(c.protected ? "P" : ".") \(c.rootState) "
            if mode {
                if c.mode == nil && c.invalidMode == nil && defaultMode == nil {
                    defaultMode = ModeResolver(context: context).defaultMode()
                }
                line += (c.mode?.rawValue ?? c.invalidMode ?? defaultMode ?? "").padding(2) + " "
            }
            if size { line += String(Self.sizeMB(repo.containerRoot(c.id))).padding(5) + " " }
            if platform {
                line += (repo.containerConfigBytes(c.id).flatMap { ImagePlatform.describe(configBytes: $0) } ?? "").padding(18) + " "
            }
            // udocker: a Python list for named containers, a blank for unnamed ones (awk columns)
            let names = c.names.isEmpty ? "" : "[" + c.names.map { "'\($0)'" }.joined(separator: ", ") + "]"
            line += String(names.prefix(100)).padding(18) + " " + String(c.image.prefix(100))
            print(line)
        }
        return 0
    }

    static func sizeMB(_ root: String) -> Int {
        guard let out = try? Subprocess.run("/usr/bin/du", ["-s", "-m", "-x", root]).output else { return -1 }
        return Int(String(decoding: out, as: UTF8.self).split(separator: "\t").first ?? "") ?? -1
    }
}
