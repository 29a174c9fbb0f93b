import Foundation
import Testing
import TestSupport

/// pull / images / inspect / verify / tag / rmi / manifest, and the on-disk layout (reference §3.2, §3.8).
@Suite("E2E images", e2eEnabled)
struct ImageTests {
    @Test("pull stores udocker's layout: TAG, v2, manifest, relative sha256:* links for layers and config")
    func pullLayout() async throws {
        let box = try sandbox()
        let image = box.env.busybox
        try await box.pull(image)
        let tagDir = box.tagDirectory(image)
        #expect(box.exists("\(tagDir)/TAG"), "no TAG in \(tagDir)")
        #expect(box.exists("\(tagDir)/v2"), "no v2 marker in \(tagDir)")
        let (config, layers) = try box.manifestDigests(image)
        #expect(!layers.isEmpty)
        for digest in layers + [config] {
            let link = "\(tagDir)/\(digest)"
            #expect(box.isSymlink(link), "\(digest) is not a symlink in the tag dir")
            let target = (try? FileManager.default.destinationOfSymbolicLink(atPath: link)) ?? ""
            #expect(
                !target.hasPrefix("/") && target.hasSuffix("layers/\(digest)"), "link \(digest) → '\(target)' must be relative into layers/"
            )
            let file = "\(box.layersDirectory)/\(digest)"
            #expect(box.exists(file), "missing layers/\(digest)")
            #expect(box.sha256(file).map { "sha256:" + $0 } == digest, "layers/\(digest) content does not match its digest")
        }
        let lines = try await box.imageLines()
        #expect(lines == ["\(image)    ."], "images: \(lines)")
    }

    @Test("images -l shows the tag dir and each layer with its size; images -p the platform")
    func imagesLongAndPlatform() async throws {
        let box = try sandbox()
        let image = box.env.busybox
        try await box.pull(image)
        let long = try await box.udocker(["images", "-l"])
        expectSuccess(long)
        #expect(long.stdoutLines.contains("\(image)    ."), "\(long)")
        #expect(long.stdoutLines.contains(" \(box.tagDirectory(image))"), "\(long)")
        let (config, layers) = try box.manifestDigests(image)
        for digest in layers + [config] {
            #expect(
                long.stdoutLines.contains { $0.hasPrefix("    /\(digest) (") && $0.hasSuffix(" MB)") },
                "no layer line for \(digest):\n\(long)")
        }
        let plat = try await box.udocker(["images", "-p"])
        expectSuccess(plat)
        #expect(plat.stdoutLines.contains { $0.hasPrefix("linux/amd64") && $0.hasSuffix(" . \(image)") }, "\(plat)")
    }

    @Test("inspect <image> prints the image config JSON")
    func inspectImage() async throws {
        let box = try sandbox()
        try await box.pull(box.env.busybox)
        let r = try await box.udocker(["inspect", box.env.busybox])
        expectSuccess(r)
        let json = try jsonObject(r)
        #expect(json["architecture"] as? String == "amd64", "\(r)")
        let config = try #require(json["config"] as? [String: Any], "\(r)")
        let envList = config["Env"] as? [String] ?? []
        #expect(envList.contains("E2E_IMAGE_VAR=from-image"), "\(r)")
        #expect(config["Cmd"] as? [String] == ["sh"], "\(r)")
        #expect(config["WorkingDir"] as? String == "/tmp", "\(r)")
    }

    @Test("verify passes on a pulled image and fails once a layer file is damaged")
    func verify() async throws {
        let box = try sandbox()
        let image = box.env.busybox
        try await box.pull(image)
        expectSuccess(try await box.udocker(["verify", image]))
        let (_, layers) = try box.manifestDigests(image)
        let file = "\(box.layersDirectory)/\(try #require(layers.last))"
        let handle = try #require(FileHandle(forUpdatingAtPath: file))
        let size = try handle.seekToEnd()
        try handle.seek(toOffset: size / 2)
        let byte = try #require(try handle.read(upToCount: 1)?.first)
        try handle.seek(toOffset: size / 2)
        try handle.write(contentsOf: Data([byte ^ 0xFF]))
        try handle.close()
        let bad = try await box.udocker(["verify", image])
        expectNoCrash(bad)
        #expect(bad.status != 0, "verify must fail on a damaged layer:\n\(bad)")
    }

    @Test("verify of an image that is not there fails")
    func verifyMissing() async throws {
        let box = try sandbox()
        let r = try await box.udocker(["verify", "\(box.env.registry)/library/busybox:nosuchtag"])
        expectNoCrash(r)
        #expect(r.status != 0, "\(r)")
    }

    @Test("tag adds a second name; rmi keeps layers still used by the other tag, then removes them")
    func tagAndRmi() async throws {
        let box = try sandbox()
        let image = box.env.busybox
        try await box.pull(image)
        let (config, layers) = try box.manifestDigests(image)
        expectSuccess(try await box.udocker(["tag", image, "mybox:v1"]))
        #expect(box.exists("\(box.tagDirectory("mybox:v1"))/TAG"))
        let lines = Set(try await box.imageLines())
        #expect(lines == ["\(image)    .", "mybox:v1    ."], "images: \(lines)")

        expectSuccess(try await box.udocker(["rmi", image]))
        #expect(!box.exists(box.tagDirectory(image)), "rmi left the tag dir")
        for digest in layers + [config] {
            #expect(box.exists("\(box.layersDirectory)/\(digest)"), "rmi removed \(digest) still used by mybox:v1")
        }
        #expect(try await box.imageLines() == ["mybox:v1    ."])
        expectSuccess(try await box.udocker(["verify", "mybox:v1"]))
        let id = try await box.create("mybox:v1")
        #expect(box.exists("\(box.containerRoot(id))/bin/busybox"))

        expectSuccess(try await box.udocker(["rmi", "mybox:v1"]))
        for digest in layers + [config] {
            #expect(!box.exists("\(box.layersDirectory)/\(digest)"), "rmi of the last tag kept \(digest)")
        }
        #expect(try await box.imageLines().isEmpty)
        // the container created from the image is independent of it
        #expect(box.exists("\(box.containerRoot(id))/bin/busybox"))
    }

    @Test("pull twice is idempotent")
    func pullTwice() async throws {
        let box = try sandbox()
        try await box.pull(box.env.busybox)
        try await box.pull(box.env.busybox)
        #expect(try await box.imageLines() == ["\(box.env.busybox)    ."])
        expectSuccess(try await box.udocker(["verify", box.env.busybox]))
    }

    @Test("manifest inspect prints the registry's manifest; an index unless --platform is given")
    func manifestInspect() async throws {
        let box = try sandbox()
        let single = try await box.udocker(["manifest", "inspect", box.env.busybox])
        expectSuccess(single)
        let m = try jsonObject(single)
        #expect(m["schemaVersion"] as? Int == 2, "\(single)")
        #expect((m["layers"] as? [Any])?.isEmpty == false, "\(single)")

        let index = try await box.udocker(["manifest", "inspect", box.env.multi])
        expectSuccess(index)
        let i = try jsonObject(index)
        let platforms = (i["manifests"] as? [[String: Any]] ?? []).compactMap {
            ($0["platform"] as? [String: Any])?["architecture"] as? String
        }
        #expect(platforms.sorted() == ["amd64", "arm64"], "\(index)")

        let resolved = try await box.udocker(["manifest", "inspect", "--platform=linux/arm64", box.env.multi])
        expectSuccess(resolved)
        let r = try jsonObject(resolved)
        #expect((r["layers"] as? [Any])?.count == 1, "\(resolved)")
        // manifest inspect does not store anything
        #expect(try await box.imageLines().isEmpty)
    }

    @Test("Docker schema 2 manifests (debian, pushed with skopeo --format v2s2) are pulled too")
    func dockerSchema2() async throws {
        let box = try sandbox()
        try await box.pull(box.env.debian)
        let manifest = box.readFile("\(box.tagDirectory(box.env.debian))/manifest") ?? ""
        #expect(manifest.contains("application/vnd.docker.distribution.manifest.v2+json"))
        expectSuccess(try await box.udocker(["verify", box.env.debian]))
    }
}
