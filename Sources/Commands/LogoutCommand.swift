import ArgumentParser
import Store
import UDockerSystem

struct LogoutCommand: UDockerCommand {
    static let configuration = CommandConfiguration(
        commandName: "logout", abstract: "Remove stored registry credentials",
        discussion: "logout [-a] [--registry=URL]: -a erases every credential")
    @Flag(name: .customShort("a"), help: "erase all credentials") var all = false
    @Option(name: .customLong("registry"), help: "registry host or URL (default Docker Hub)") var registry: String?

    func execute(_ context: CommandContext) async throws -> Int32 {
        let registry = registry?.isEmpty == false ? registry : context.configuration.path("dockerio_registry_url")
        let keystore = Keystore(path: context.configuration["keystore"])
        if all {
            try keystore.erase()
        } else if try !keystore.remove(registry: registry) {
            context.messages.warning("no credentials stored for \(Keystore.registryKey(registry))")
        }
        return 0
    }
}
