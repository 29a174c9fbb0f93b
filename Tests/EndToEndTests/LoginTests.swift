import Foundation
import Testing
import TestSupport

/// `login`/`logout` and Docker's logins against the htpasswd registry of the fixtures (a real
/// docker-registry with Basic auth from an htpasswd file; same images as the plain registry).
/// Docker credential helpers are real executables on PATH (shell scripts speaking the
/// `docker-credential-<name> get` protocol).
@Suite(
    "E2E login, keystore and Docker credentials", e2eEnabled,
    .enabled(
        if: ProcessInfo.processInfo.environment["UDOCKER_E2E_HTPASSWD_REGISTRY"]?.isEmpty == false,
        "needs the htpasswd registry fixture (UDOCKER_E2E_HTPASSWD_REGISTRY; restart scripts/test-fixtures.sh)"))
struct LoginTests {
    struct Box {
        let box: E2ESandbox
        let registry: String
        var user: String { box.env.htpasswdUser }
        var password: String { box.env.htpasswdPassword }
        var image: String { "\(registry)/library/busybox:latest" }
        var keystore: String { "\(box.home)/.udocker/keystore" }

        init(_ name: String = #function) throws {
            box = try sandbox(name)
            registry = try #require(box.env.htpasswdRegistry)
        }

        func login(_ password: String, _ extra: [String] = [], environment: [String: String] = [:]) async throws -> CommandResult {
            try await box.udocker(
                ["login", "--username=\(user)", "--password-stdin", "--registry=\(registry)"] + extra,
                environment: environment, stdin: password + "\n")
        }

        func mode(_ p: String) -> Int { (try? FileManager.default.attributesOfItem(atPath: p)[.posixPermissions] as? Int) ?? -1 }

        /// `<dir>/docker-credential-<name>`: logs the server it is asked for, answers `user:secret`.
        func helper(_ name: String, in dir: String, user: String, secret: String) throws {
            try box.makeUserDirectory(dir)
            try box.writeUserFile(
                "\(dir)/docker-credential-\(name)",
                """
                #!/bin/sh
                [ "$1" = get ] || exit 1
                read -r server
                echo "$server" >>"\(box.path)/\(name).asked"
                printf '{"ServerURL":"%s","Username":"\(user)","Secret":"\(secret)"}\\n' "$server"
                """, mode: 0o755)
        }

        func dockerConfig(_ json: String, dir: String? = nil) throws {
            let d = dir ?? "\(box.home)/.docker"
            try box.makeUserDirectory(d, mode: 0o700)
            try box.writeUserFile("\(d)/config.json", json, mode: 0o600)
        }
    }

    @Test("login checks the password with the registry, stores it 0600 under ~/.udocker; pull uses it; logout removes it")
    func loginPullLogout() async throws {
        let t = try Box()
        defer { t.box.remove() }
        expectOneLineError(try await t.box.udocker(["pull", t.image]), status: nil)
        expectSuccess(try await t.login(t.password))
        #expect(t.mode(t.keystore) == 0o600, "keystore mode \(String(t.mode(t.keystore), radix: 8))")
        #expect(!t.box.exists("\(t.box.udockerDir)/keystore"), "udocker 1.3.17 keeps the keystore under ~/.udocker, not UDOCKER_DIR")
        let stored = t.box.readFile(t.keystore) ?? ""
        #expect(stored.contains("https://\(t.registry)") && !stored.contains(t.password), "\(stored)")
        try await t.box.pull(t.image)
        expectSuccess(try await t.box.udocker(["logout", "--registry=\(t.registry)"]))
        #expect(!(t.box.readFile(t.keystore) ?? "").contains(t.registry))
        expectSuccess(try await t.box.udocker(["rmi", t.image]))
        expectOneLineError(try await t.box.udocker(["pull", t.image]), status: nil)
    }

    @Test("a wrong password is refused with one line and nothing is stored or changed")
    func wrongPassword() async throws {
        let t = try Box()
        defer { t.box.remove() }
        let r = try await t.login("wrong")
        expectOneLineError(r, status: 1, mentioning: ["wrong user name or password"])
        #expect(!t.box.exists(t.keystore))
        try t.box.writeKeystore(registryURL: "https://quay.io", user: "someone", password: "kept")
        let before = t.box.readFile(t.keystore)
        expectOneLineError(try await t.login("wrong"), status: 1)
        #expect(t.box.readFile(t.keystore) == before, "an earlier login is kept as it was")
    }

    @Test("--password on the command line works and warns; --password-stdin does not warn")
    func passwordOnArgv() async throws {
        let t = try Box()
        defer { t.box.remove() }
        let r = try await t.box.udocker(["login", "--username=\(t.user)", "--password=\(t.password)", "--registry=\(t.registry)"])
        expectSuccess(r)
        #expect(r.stderr.contains("--password-stdin"), "\(r)")
        let quiet = try await t.login(t.password)
        expectSuccess(quiet)
        #expect(!quiet.stderr.contains("Warning"), "\(quiet)")
    }

    @Test("a keystore others can read is refused (one line) and left alone")
    func unsafeKeystore() async throws {
        let t = try Box()
        defer { t.box.remove() }
        try t.box.writeKeystore(registryURL: "https://quay.io", user: "someone", password: "kept")
        try requireSuccess(try await t.box.shell("chmod 644 '\(t.keystore)'"))
        let r = try await t.login(t.password)
        expectOneLineError(r, status: 1, mentioning: ["chmod 600"])
        #expect(!(t.box.readFile(t.keystore) ?? "").contains(t.registry))
        #expect(t.mode(t.keystore) == 0o644)
    }

    @Test("UDOCKER_KEYSTORE: an absolute path is used by login, pull and logout")
    func keystoreVariable() async throws {
        let t = try Box()
        defer { t.box.remove() }
        let custom = "\(t.box.path)/secrets/ks"
        try t.box.makeUserDirectory("\(t.box.path)/secrets", mode: 0o700)
        let env = ["UDOCKER_KEYSTORE": custom]
        expectSuccess(try await t.login(t.password, environment: env))
        #expect(t.mode(custom) == 0o600)
        #expect(!t.box.exists(t.keystore))
        try await t.box.pull(t.image, environment: env)
        expectSuccess(try await t.box.udocker(["logout", "-a"], environment: env))
        #expect(!t.box.exists(custom))
    }

    @Test("the Python udocker's login is used by our pull (same keystore file and format)")
    func pythonLogin() async throws {
        let t = try Box()
        defer { t.box.remove() }
        let py = try await t.box.python(["login", "--username=\(t.user)", "--password=\(t.password)", "--registry=\(t.registry)"])
        expectSuccess(py)
        #expect(t.box.exists(t.keystore))
        try await t.box.pull(t.image)
    }

    @Test("Docker config auths (DOCKER_CONFIG) is used; the udocker keystore wins over it")
    func dockerAuths() async throws {
        let t = try Box()
        defer { t.box.remove() }
        let auth = Data("\(t.user):\(t.password)".utf8).base64EncodedString()
        let dir = "\(t.box.path)/dockercfg"
        try t.dockerConfig(#"{"auths": {"\#(t.registry)": {"auth": "\#(auth)"}}}"#, dir: dir)
        let env = ["DOCKER_CONFIG": dir]
        try t.box.writeKeystore(registryURL: "https://\(t.registry)", user: t.user, password: "wrong")
        expectOneLineError(try await t.box.udocker(["pull", t.image], environment: env), status: nil)
        expectSuccess(try await t.box.udocker(["logout", "--registry=\(t.registry)"]))
        try await t.box.pull(t.image, environment: env)
    }

    @Test("Docker credHelpers: docker-credential-<helper> get is asked for the registry")
    func credHelpers() async throws {
        let t = try Box()
        defer { t.box.remove() }
        let bin = "\(t.box.path)/bin"
        let env = ["PATH": "\(bin):\(E2ESandbox.defaultPath)"]
        try t.helper("e2ehelper", in: bin, user: t.user, secret: t.password)
        try t.dockerConfig(#"{"auths": {"\#(t.registry)": {}}, "credHelpers": {"\#(t.registry)": "e2ehelper"}}"#)
        try await t.box.pull(t.image, environment: env)
        #expect(t.box.readFile("\(t.box.path)/e2ehelper.asked") == "\(t.registry)\n")
        // the same config with the helper answering a wrong secret: the pull fails
        try t.helper("e2ehelper", in: bin, user: t.user, secret: "wrong")
        expectSuccess(try await t.box.udocker(["rmi", t.image]))
        expectOneLineError(try await t.box.udocker(["pull", t.image], environment: env), status: nil)
    }

    @Test("Docker credsStore is asked for every registry; a missing helper means no credentials")
    func credsStore() async throws {
        let t = try Box()
        defer { t.box.remove() }
        let bin = "\(t.box.path)/bin"
        try t.dockerConfig(#"{"credsStore": "e2estore"}"#)
        expectOneLineError(try await t.box.udocker(["pull", t.image]), status: nil)
        try t.helper("e2estore", in: bin, user: t.user, secret: t.password)
        try await t.box.pull(t.image, environment: ["PATH": "\(bin):\(E2ESandbox.defaultPath)"])
        #expect(t.box.readFile("\(t.box.path)/e2estore.asked") == "\(t.registry)\n")
    }

    @Test("-D shows what the credential helper did; a missing helper is named in the error, not 'use udocker login'")
    func helperDiagnostics() async throws {
        let t = try Box()
        defer { t.box.remove() }
        try t.dockerConfig(#"{"credsStore": "e2emissing"}"#)
        let missing = try await t.box.udocker(["-D", "pull", t.image])
        expectNoCrash(missing)
        #expect(missing.status != 0, "\(missing)")
        #expect(missing.stderr.contains("Debug: docker-credential-e2emissing not found on PATH"), "\(missing)")
        let error = missing.errorLines.joined(separator: "\n")
        #expect(error.contains("credential helper docker-credential-e2emissing") && error.contains("not found on PATH"), "\(missing)")
        #expect(!error.contains("use udocker login"), "\(missing)")
        let bin = "\(t.box.path)/bin"
        try t.helper("e2emissing", in: bin, user: t.user, secret: t.password)
        let found = try await t.box.udocker(["-D", "pull", t.image], environment: ["PATH": "\(bin):\(E2ESandbox.defaultPath)"])
        expectSuccess(found)
        #expect(found.stderr.contains("Debug: credentials for \(t.registry) from docker-credential-e2emissing"), "\(found)")
        #expect(!found.stderr.contains(t.password), "the secret reached the output")
    }
}
