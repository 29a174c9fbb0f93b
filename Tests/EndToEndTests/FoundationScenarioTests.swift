import Foundation
import Testing
import TestSupport

/// The foundation issue's scenario, verbatim, on the dynamically linked Debian image:
///
///     udocker pull 127.0.0.1:5000/library/debian:bookworm; udocker images
///     udocker create --name=deb 127.0.0.1:5000/library/debian:bookworm
///     udocker run deb cat /etc/os-release
///     udocker run --rm -e X=1 -v /tmp:/mnt -w /mnt deb sh -c 'echo $X; pwd; exit 42'; echo $?   # 1, /mnt, 42
///     udocker rm deb; udocker rmi 127.0.0.1:5000/library/debian:bookworm
@Suite("E2E foundation scenario (debian)", e2eEnabled)
struct FoundationScenarioTests {
    @Test("pull, images, create, run, run --rm, rm, rmi", arguments: Engine.allCases)
    func scenario(engine: Engine) async throws {
        let box = try sandbox("scenario-\(engine.rawValue)")
        let image = box.env.debian
        try await box.pull(image)
        #expect(try await box.imageLines() == ["\(image)    ."])

        let id = try await box.create(image, name: "deb")
        try await box.use(engine, for: "deb")
        let os = try await box.run(["deb", "cat", "/etc/os-release"])
        expectSuccess(os)
        #expect(os.stdoutLines.contains("VERSION_CODENAME=\(box.env.debianTag)"), "\(os)")
        #expect(os.stdoutLines.contains("ID=debian"), "\(os)")

        // dynamically linked programs, the image PATH and shell features
        let dyn = try await box.run(["deb", "bash", "-c", "ls / >/dev/null && echo \"$PATH\" && head -c 3 /etc/debian_version | wc -c"])
        expectSuccess(dyn)
        #expect(dyn.stdoutLines == ["/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "3"], "\(dyn)")

        let r = try await box.run(["--rm", "-e", "X=1", "-v", "/tmp:/mnt", "-w", "/mnt", "deb", "sh", "-c", "echo $X; pwd; exit 42"])
        expectNoCrash(r)
        #expect(r.stdout == "1\n/mnt\n", "\(r)")
        #expect(r.status == 42, "\(r)")
        #expect(!box.exists(box.containerDirectory(id)), "run --rm must delete the container")
        #expect(!box.isSymlink("\(box.containersDirectory)/deb"), "run --rm must delete the alias")

        // a second container for rm
        let id2 = try await box.create(image, name: "deb")
        try await box.use(engine, for: "deb")
        expectSuccess(try await box.run(["deb", "true"]))
        expectSuccess(try await box.udocker(["rm", "deb"]))
        #expect(!box.exists(box.containerDirectory(id2)))
        #expect(try await box.psLines().isEmpty)

        let (config, layers) = try box.manifestDigests(image)
        expectSuccess(try await box.udocker(["rmi", image]))
        #expect(try await box.imageLines().isEmpty)
        for digest in layers + [config] {
            #expect(!box.exists("\(box.layersDirectory)/\(digest)"), "rmi kept \(digest)")
        }
    }
}
