import ArgumentParser
import FoundationEssentials
import Registry
import Store
#if canImport(Glibc)
import Glibc
#endif
import UDockerSystem

struct LoginCommand: UDockerCommand {
    static let configuration = CommandConfiguration(
        commandName: "login", abstract: "Log in to a registry and store the credentials",
        discussion: """
            login [--username=USER] [--password=PASS | --password-stdin] [--registry=URL]
            Unlike udocker, the credentials are checked with the registry (GET /v2/ and its token
            service or Basic challenge) before they are stored: wrong ones are refused and nothing is
            written. They are stored in udocker's keystore (0600 in a 0700 directory):
            UDOCKER_KEYSTORE if absolute, else ~/.udocker/<keystore> (not under UDOCKER_DIR, as in
            udocker). Pulls use the keystore first, then Docker's logins (~/.docker/config.json or
            $DOCKER_CONFIG/config.json: credHelpers, auths, credsStore).
            """)
    @Option(name: .customLong("username"), help: "user name (prompted for when missing)") var username: String?
    @Option(name: .customLong("password"), help: "password (visible to other users: prefer --password-stdin)") var password: String?
    @Flag(name: .customLong("password-stdin"), help: "read the password from standard input") var passwordStdin = false
    @Option(name: .customLong("registry"), help: "registry host or URL (default Docker Hub)") var registry: String?

    func execute(_ context: CommandContext) async throws -> Int32 {
        if passwordStdin && password?.isEmpty == false { throw CommandFailure("--password and --password-stdin exclude each other") }
        var user = username
        if user == nil || user!.isEmpty {
            if passwordStdin { throw CommandFailure("--password-stdin needs --username") }
            FileDescriptorIO.write(2, "username: ")
            user = readLine(strippingNewline: true)
        }
        var secret = password
        if passwordStdin {
            // Like docker: all of stdin, without the trailing newline(s).
            let data = FileDescriptorIO.readToEnd(0)
            secret = String(decoding: data, as: UTF8.self).trimmed(where: { $0 == "\r" || $0 == "\n" || $0 == "\r\n" })
        } else if let p = secret, !p.isEmpty {
            context.messages.warning("--password on the command line can be seen by other users (ps, shell history): use --password-stdin")
        } else {
            secret = getpass("password: ").map { String(cString: $0) }
        }
        guard let u = user, !u.isEmpty, let p = secret, !p.isEmpty else { throw CommandFailure("username and password are required") }
        if p == p.uppercased() && p != p.lowercased() { context.messages.warning("password in uppercase: Caps Lock?") }
        // No --registry: the configured default (UDOCKER_REGISTRY, dockerio_registry_url), as udocker.
        let registry = registry?.isEmpty == false ? registry : context.configuration.path("dockerio_registry_url")
        let keystore = Keystore(path: context.configuration["keystore"])
        try keystore.checkOwnership()  // refuse an unsafe keystore before anything is sent
        let client = try RegistryClient(options: ImagePuller(context: context, registry: registry).registryOptions())
        let check: LoginCheck
        do { check = try await client.verifyLogin(registry: registry, username: u, password: p) } catch {
            await client.shutdown()
            throw CommandFailure("login failed: \(error)", cause: error)
        }
        await client.shutdown()
        if check == .notRequired {
            context.messages.warning("\(Keystore.registryKey(registry)) does not ask for credentials; stored anyway")
        }
        try keystore.store(registry: registry, username: u, password: p)
        context.messages.info("Login Succeeded (\(Keystore.registryKey(registry)), stored in \(keystore.path))")
        return 0
    }
}
