import ArgumentParser
import Foundation
import Store
#if canImport(Glibc)
import Glibc
#endif

struct LoginCommand: UDockerCommand {
    static let configuration = CommandConfiguration(commandName: "login", abstract: "Store credentials for a registry",
        discussion: """
        login [--username=USER] [--password=PASS | --password-stdin] [--registry=URL]
        Like udocker, the registry is not contacted: the credentials are stored (0600) in the
        keystore and sent when a registry or its token service asks for them.
        """)
    @Option(name: .customLong("username"), help: "user name (prompted for when missing)") var username: String?
    @Option(name: .customLong("password"), help: "password (prefer --password-stdin)") var password: String?
    @Flag(name: .customLong("password-stdin"), help: "read the password from standard input") var passwordStdin = false
    @Option(name: .customLong("registry"), help: "registry host or URL (default Docker Hub)") var registry: String?

    func execute(_ context: CommandContext) async throws -> Int32 {
        var user = username
        if user == nil || user!.isEmpty {
            FileHandle.standardError.write(Data("username: ".utf8))
            user = readLine(strippingNewline: true)
        }
        var secret = password
        if passwordStdin {
            secret = readLine(strippingNewline: true)
        } else if secret == nil {
            secret = getpass("password: ").map { String(cString: $0) }
        }
        guard let u = user, !u.isEmpty, let p = secret, !p.isEmpty else { throw CommandFailure("username and password are required") }
        if p == p.uppercased() && p != p.lowercased() { context.messages.warning("password in uppercase: Caps Lock?") }
        try Keystore(path: context.configuration["keystore"]).store(registry: registry, username: u, password: p)
        return 0
    }
}
