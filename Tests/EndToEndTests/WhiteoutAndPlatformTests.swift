import Foundation
import Testing
import TestSupport

/// Layer flattening with whiteouts (image built by umoci + GNU tar, see scripts/test-fixtures.sh).
@Suite("E2E whiteouts", e2eEnabled)
struct WhiteoutTests {
    @Test("create applies file, directory, nested and opaque whiteouts")
    func whiteouts() async throws {
        let box = try sandbox()
        let id = try await box.pullAndCreate(box.env.whiteout, name: "wh")
        let root = box.containerRoot(id)
        #expect(box.readFile("\(root)/keep") == "keep\n", "/keep must survive")
        #expect(!box.exists("\(root)/gone"), "/gone was whited out (.wh.gone at the top level)")
        #expect(!box.exists("\(root)/gonedir"), "/gonedir was whited out (.wh.gonedir)")
        #expect(!box.exists("\(root)/dir/sub/gone2"), "/dir/sub/gone2 was whited out")
        #expect(box.readFile("\(root)/dir/sub/stay") == "stay\n")
        #expect(box.listDirectory("\(root)/opq") == ["c"], "opaque /opq must contain only c")
        let leftovers = box.walk(root).filter { ($0 as NSString).lastPathComponent.hasPrefix(".wh.") }
        #expect(leftovers.isEmpty, "whiteout markers left in ROOT: \(leftovers)")
        // and the container sees the same
        let r = try await box.run(["wh", "sh", "-c", "ls -a /opq; test -e /gone && echo BAD; cat /keep"])
        expectSuccess(r)
        #expect(r.stdoutLines.filter { $0 != "." && $0 != ".." } == ["c", "keep"], "\(r)")
    }
}

/// Multi-platform index (linux/amd64 busybox + /arch=amd64, linux/arm64/v8 with /arch=arm64 only).
@Suite("E2E platforms", e2eEnabled)
struct PlatformTests {
    @Test("default pull of a multi-arch image selects linux/amd64")
    func defaultPlatform() async throws {
        let box = try sandbox()
        let id = try await box.pullAndCreate(box.env.multi, name: "m")
        #expect(box.readFile("\(box.containerRoot(id))/arch") == "amd64\n")
        #expect(box.exists("\(box.containerRoot(id))/bin/busybox"))
        let r = try await box.run(["m", "cat", "/arch"])
        expectSuccess(r)
        #expect(r.stdout == "amd64\n", "\(r)")
        let p = try await box.udocker(["images", "-p"])
        #expect(p.stdoutLines.contains { $0.hasPrefix("linux/amd64") && $0.hasSuffix(box.env.multi) }, "\(p)")
    }

    @Test("--platform=linux/arm64 selects the arm64 manifest")
    func arm64() async throws {
        let box = try sandbox()
        try await box.pull(box.env.multi, ["--platform=linux/arm64"])
        let id = try await box.create(box.env.multi)
        #expect(box.readFile("\(box.containerRoot(id))/arch") == "arm64\n")
        #expect(!box.exists("\(box.containerRoot(id))/bin/busybox"), "the arm64 image has no busybox")
        let p = try await box.udocker(["images", "-p"])
        #expect(p.stdoutLines.contains { $0.hasPrefix("linux/arm64") && $0.hasSuffix(box.env.multi) }, "\(p)")
        let (config, _) = try box.manifestDigests(box.env.multi)
        let cfg = box.readFile("\(box.layersDirectory)/\(config)") ?? ""
        #expect(cfg.contains("\"arm64\""), "config of the arm64 manifest expected")
    }

    @Test("--platform=linux/s390x fails with one error line listing the available platforms; nothing stored")
    func unavailablePlatform() async throws {
        let box = try sandbox()
        let r = try await box.udocker(["pull", "--platform=linux/s390x", box.env.multi])
        expectOneLineError(r, status: nil, mentioning: ["linux/amd64", "linux/arm64"])
        #expect(try await box.imageLines().isEmpty)
        #expect(box.listDirectory(box.layersDirectory).isEmpty, "layers stored for a failed pull")
    }
}
