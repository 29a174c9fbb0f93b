import Foundation
import Testing
import TestSupport

/// Both directions with the Python udocker 1.3.17 on the same UDOCKER_DIR (reference §3.8, §11).
///
/// Python quirks these tests work around (see E2ESandbox.python):
/// * it is kept offline by `$UDOCKER_DIR/lib/VERSION` (else it downloads udockertools);
/// * it pulls from a plain-HTTP registry only with `UDOCKER_REGISTRY=http://host:port` and a name
///   without the host (`library/busybox`);
/// * it mis-splits `host:port/name:tag` in every command that takes an image name (verify, create,
///   tag ... look under `repos/127.0.0.1/5000/...:tag`), but `images` walks the tree and lists such
///   images fine, and `run`/`ps` address containers by id or name;
/// * its P1 with Debian's proot and R1 with runc misbehave, so its `run` is tested in F1
///   (libfakechroot from Debian, dynamically linked debian image).
@Suite("E2E compatibility with Python udocker 1.3.17", e2eEnabled)
struct PythonCompatibilityTests {
    var pyPull: [String: String] { ["UDOCKER_REGISTRY": "http://\((try? E2EEnvironment.load())?.registry ?? "127.0.0.1:5000")"] }

    @Test("an image pulled by Python udocker is listed, verified, created and run by ours")
    func pythonPullsOursRuns() async throws {
        let box = try sandbox()
        let py = try await box.python(["pull", "library/busybox"], environment: pyPull)
        try requireSuccess(py)
        #expect(box.exists("\(box.tagDirectory("library/busybox:latest"))/TAG"), "Python layout not as expected")

        let lines = try await box.imageLines()
        #expect(lines == ["library/busybox:latest    ."], "ours: images \(lines)")
        expectSuccess(try await box.udocker(["verify", "library/busybox:latest"]))
        let inspect = try await box.udocker(["inspect", "library/busybox:latest"])
        expectSuccess(inspect)
        #expect(try jsonObject(inspect)["architecture"] as? String == "amd64")

        let id = try await box.create("library/busybox:latest", name: "ours")
        #expect(box.readFile("\(box.containerDirectory(id))/imagerepo.name")?.hasPrefix("library/busybox:latest") == true)
        let r = try await box.run(["--rm", "-e", "X=1", "-w", "/etc", "ours", "sh", "-c", "echo $X; pwd; cat /etc/e2e-release; exit 7"])
        #expect(r.stdout == "1\n/etc\nudocker-e2e busybox image\n", "\(r)")
        #expect(r.status == 7, "\(r)")
    }

    @Test("a container created by Python udocker is listed and run by ours")
    func pythonCreatesOursRuns() async throws {
        let box = try sandbox()
        try requireSuccess(try await box.python(["pull", "library/busybox"], environment: pyPull))
        let created = try await box.python(["create", "--name=pyc", "library/busybox"])
        try requireSuccess(created)
        let id = try #require(created.stdoutLines.last { isContainerID($0) }, "\(created)")
        let ps = try await box.psLines()
        #expect(
            ps.count == 1 && ps[0].hasPrefix("\(id) . W ") && ps[0].contains("['pyc']")
                && ps[0].trimmingTrailingWhitespace.hasSuffix("library/busybox:latest"),
            "ours: ps \(ps)")
        let r = try await box.run(["pyc", "cat", "/etc/e2e-release"])
        expectSuccess(r)
        #expect(r.stdout == "udocker-e2e busybox image\n", "\(r)")
        expectSuccess(try await box.udocker(["rm", "pyc"]))
        let pyPs = try await box.python(["ps"])
        #expect(!pyPs.stdout.contains(id), "Python still lists the container ours removed:\n\(pyPs)")
    }

    @Test("an image pulled and a container created by ours are listed and run (F1) by Python udocker")
    func oursCreatesPythonRuns() async throws {
        let box = try sandbox()
        let image = box.env.debian
        let id = try await box.pullAndCreate(image, name: "deb")

        let images = try await box.python(["images"])
        try requireSuccess(images)
        #expect(images.stdoutLines.contains("\(image)    ."), "Python: images\n\(images)")

        let ps = try await box.python(["ps"])
        try requireSuccess(ps)
        let row = ps.stdoutLines.first { $0.hasPrefix(id) }
        #expect(
            row.map { $0.hasPrefix("\(id) . W ['deb']") && $0.trimmingTrailingWhitespace.hasSuffix(image) } == true, "Python: ps\n\(ps)")

        let f1 = ["UDOCKER_FAKECHROOT_SO": box.env.fakechrootSO, "UDOCKER_USE_PATCHELF_EXECUTABLE": box.env.patchelf]
        try requireSuccess(try await box.python(["setup", "--execmode=F1", "deb"], environment: f1))
        let os = try await box.python(["run", "--nobanner", "deb", "cat", "/etc/os-release"], environment: f1)
        expectSuccess(os)
        #expect(os.stdoutLines.contains("VERSION_CODENAME=\(box.env.debianTag)"), "Python F1 run:\n\(os)")
        let status = try await box.python(["run", "--nobanner", "-e", "X=1", "deb", "/bin/sh", "-c", "echo $X; exit 7"], environment: f1)
        #expect(status.status == 7, "Python F1 run:\n\(status)")
        #expect(status.stdoutLines.contains("1"), "\(status)")

        // back to ours: the container is still ours to list and remove
        let ours = try await box.psLines(["-m"])
        #expect(ours.first?.hasPrefix("\(id) . W F1 ") == true, "ours: ps -m \(ours)")
        expectSuccess(try await box.udocker(["rm", "deb"]))
        expectSuccess(try await box.udocker(["rmi", image]))
        #expect(try await box.imageLines().isEmpty)
    }
}
