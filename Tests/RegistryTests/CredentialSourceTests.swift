import Foundation
@testable import Registry
import TestSupport
import Testing

/// Docker's config.json as a credential source, and the rate-limit advice (issue 15.2, 15.7).
@Suite struct CredentialSourceTests {
    @Test func helperNamesArePlainNames() {
        #expect(DockerCredentials.validHelperName("ecr-login"))
        #expect(DockerCredentials.validHelperName("pass"))
        #expect(!DockerCredentials.validHelperName("../../bin/sh"))
        #expect(!DockerCredentials.validHelperName("a b"))
        #expect(!DockerCredentials.validHelperName(".hidden"))
    }

    @Test func missingHelperFallsBackToAuthsAndKeystoreWins() throws {
        let dir = try TemporaryDirectory()
        let auth = Data("u:p".utf8).base64EncodedString()
        let config = dir.sub("config.json")
        try Data(
            #"{"auths": {"reg.example:5000": {"auth": "\#(auth)"}, "https://index.docker.io/v1/": {"username": "hub", "password": "pw"}}, "credHelpers": {"reg.example:5000": "udocker-test-absent-helper", "x.example": "../evil"}}"#
                .utf8
        ).write(to: URL(fileURLWithPath: config))
        let docker = DockerCredentials(path: config)
        #expect(docker.warnings.count == 1 && docker.warnings[0].contains("../evil"), "\(docker.warnings)")
        #expect(docker.authorization(forKey: "reg.example:5000") == auth)
        #expect(docker.authorization(forKey: "docker.io") == Data("hub:pw".utf8).base64EncodedString())
        #expect(docker.authorization(forKey: "other.example") == nil)

        let ks = dir.sub("keystore")
        try Data(#"{"https://reg.example:5000": {"auth": "a2V5OnN0b3Jl"}}"#.utf8).write(to: URL(fileURLWithPath: ks))
        chmod(ks, 0o600)
        let store = CredentialStore(udockerKeystore: ks, dockerConfig: config)
        #expect(store.authorization(forRegistry: "reg.example:5000") == "a2V5OnN0b3Jl")
        #expect(store.authorization(forRegistry: "https://registry-1.docker.io") == Data("hub:pw".utf8).base64EncodedString())
    }

    @Test func rateLimitSaysHowLongToWait() async throws {
        try await withRegistry(maxAttempts: 1) { reg, client, _ in
            reg.setHook { r in r.path.contains("/manifests/") ? .json(429, "{}", [("Retry-After", "3600")]) : nil }
            await expectFailure("HTTP 429): wait 60 minutes and try again") {
                _ = try await client.resolveImage(ImageReference(parsing: "\(reg.host)/app"), platform: nil)
            }
            reg.setHook { r in r.path.contains("/manifests/") ? .json(429, "{}", [("Retry-After", "30")]) : nil }
            await expectFailure("wait 30 seconds") {
                _ = try await client.resolveImage(ImageReference(parsing: "\(reg.host)/app"), platform: nil)
            }
        }
    }
}
