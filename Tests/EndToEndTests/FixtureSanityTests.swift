import Foundation
import Testing
import TestSupport

/// The fixtures themselves: if these fail, every other E2E failure is suspect.
@Suite("E2E fixtures", e2eEnabled)
struct FixtureSanityTests {
    @Test("environment is complete and the binary runs as the test user")
    func environment() async throws {
        let env = try E2EEnvironment.load()
        let box = try E2ESandbox(env, name: "sanity")
        let who = try await box.shell("id -un")
        try requireSuccess(who)
        if geteuid() == 0 { #expect(who.stdout == "\(env.user)\n", "\(who)") }
        #expect(who.stdout != "root\n", "the E2E commands must not run as root:\n\(who)")
        let r = try await box.udocker(["version"])
        expectSuccess(r)
    }

    @Test("registries answer /v2/ (ports from the env file)", arguments: ["plain", "token"])
    func registries(kind: String) async throws {
        let env = try E2EEnvironment.load()
        let box = try E2ESandbox(env, name: "sanity-reg")
        let host = kind == "plain" ? env.registry : env.tokenRegistry
        let r = try await box.shell("curl -s -o /dev/null -w '%{http_code}' http://\(host)/v2/")
        #expect(r.stdout == (kind == "plain" ? "200" : "401"), "\(r)")
    }

    @Test(
        "the htpasswd registry asks for Basic credentials and accepts the fixture user",
        .enabled(
            if: ProcessInfo.processInfo.environment["UDOCKER_E2E_HTPASSWD_REGISTRY"]?.isEmpty == false,
            "needs the htpasswd registry fixture (UDOCKER_E2E_HTPASSWD_REGISTRY; restart scripts/test-fixtures.sh)"))
    func htpasswdRegistry() async throws {
        let env = try E2EEnvironment.load()
        let box = try E2ESandbox(env, name: "sanity-htpasswd")
        let host = try #require(env.htpasswdRegistry)
        let anonymous = try await box.shell("curl -s -o /dev/null -w '%{http_code}' http://\(host)/v2/")
        #expect(anonymous.stdout == "401", "\(anonymous)")
        let user = try await box.shell(
            "curl -s -o /dev/null -w '%{http_code}' -u '\(env.htpasswdUser):\(env.htpasswdPassword)' http://\(host)/v2/")
        #expect(user.stdout == "200", "\(user)")
    }

    @Test("the Python udocker reference runs offline")
    func pythonUdocker() async throws {
        let box = try sandbox()
        let r = try await box.python(["images"])
        try requireSuccess(r)
        #expect(r.stdoutLines.contains("REPOSITORY"), "\(r)")
        #expect(!r.stdout.contains("udockertools") && !r.stderr.contains("udockertools"), "tried to install udockertools:\n\(r)")
    }
}
