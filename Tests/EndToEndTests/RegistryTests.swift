import Foundation
import Testing
import TestSupport

/// Token authentication (127.0.0.1:5001, issuer on :5002: alice/secret may pull, anonymous
/// tokens carry no access) and a registry that serves a corrupted layer blob.
@Suite("E2E registry auth and integrity", e2eEnabled)
struct RegistryTests {
    @Test("token registry: anonymous pull is refused clearly, nothing stored")
    func anonymousRefused() async throws {
        let box = try sandbox()
        let r = try await box.udocker(["pull", box.env.tokenBusybox])
        expectOneLineError(r, status: nil)
        #expect(try await box.imageLines().isEmpty)
    }

    @Test("token registry: pull with keystore credentials (udocker login format) works")
    func pullWithCredentials() async throws {
        let box = try sandbox()
        try box.writeKeystore(registryURL: "http://\(box.env.tokenRegistry)", user: box.env.tokenUser, password: box.env.tokenPassword)
        try await box.pull(box.env.tokenBusybox)
        #expect(try await box.imageLines() == ["\(box.env.tokenBusybox)    ."])
        let id = try await box.create(box.env.tokenBusybox, name: "tb")
        #expect(box.exists("\(box.containerRoot(id))/etc/e2e-release"))
        let r = try await box.run(["tb", "cat", "/etc/e2e-release"])
        expectSuccess(r)
        #expect(r.stdout == "udocker-e2e busybox image\n", "\(r)")
    }

    @Test("login stores 0600 credentials that the token registry accepts; logout removes them")
    func loginThenPull() async throws {
        let box = try sandbox()
        let login = try await box.udocker(
            [
                "login", "--username=\(box.env.tokenUser)", "--password-stdin",
                "--registry=\(box.env.tokenRegistry)",
            ], stdin: "\(box.env.tokenPassword)\n")
        expectSuccess(login)
        let keystore = "\(box.home)/.udocker/keystore"
        let mode = (try? FileManager.default.attributesOfItem(atPath: keystore)[.posixPermissions] as? Int) ?? -1
        #expect(mode == 0o600, "keystore mode \(String(mode, radix: 8))")
        #expect(!(box.readFile(keystore) ?? "").contains(box.env.tokenPassword), "the password is not stored in clear")
        try await box.pull(box.env.tokenBusybox)
        #expect(try await box.imageLines() == ["\(box.env.tokenBusybox)    ."])
        expectSuccess(try await box.udocker(["logout", "--registry=\(box.env.tokenRegistry)"]))
        expectSuccess(try await box.udocker(["rmi", box.env.tokenBusybox]))
        expectOneLineError(try await box.udocker(["pull", box.env.tokenBusybox]), status: nil)
    }

    @Test("token registry: wrong password fails clearly, nothing stored")
    func wrongPassword() async throws {
        let box = try sandbox()
        try box.writeKeystore(registryURL: "http://\(box.env.tokenRegistry)", user: box.env.tokenUser, password: "wrong")
        let r = try await box.udocker(["pull", box.env.tokenBusybox])
        expectOneLineError(r, status: nil)
        #expect(try await box.imageLines().isEmpty)
        #expect(box.listDirectory(box.layersDirectory).isEmpty)
    }

    @Test("digest mismatch: the pull fails, images shows nothing, the bad blob is not kept")
    func corruptBlob() async throws {
        let box = try sandbox()
        let bad = box.env.corruptDigest
        let hex = String(bad.dropFirst("sha256:".count))
        let r = try await box.udocker(["pull", box.env.corrupt])
        expectNoCrash(r)
        #expect(r.status != 0, "pull of a corrupted blob must fail:\n\(r)")
        #expect(r.errorLines.count == 1, "\(r)")
        #expect(
            r.errorLines.first.map { $0.lowercased().contains("digest") || $0.contains(String(hex.prefix(12))) } == true,
            "the error should name the digest problem:\n\(r)")
        #expect(try await box.imageLines().isEmpty)
        #expect(!box.exists("\(box.layersDirectory)/\(bad)"), "layers/\(bad) must not exist")
        let leftovers = box.walk(box.udockerDir).filter { $0.contains(hex) }
        #expect(leftovers.isEmpty, "files named after the bad blob remain: \(leftovers)")
        let tags = box.walk("\(box.udockerDir)/repos").filter { $0.hasSuffix("/TAG") || $0 == "TAG" }
        #expect(tags.isEmpty, "tag dirs remain: \(tags)")
        // and nothing to create from
        expectOneLineError(try await box.udocker(["create", box.env.corrupt]))
    }
}
