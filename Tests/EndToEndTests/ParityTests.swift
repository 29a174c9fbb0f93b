import Foundation
import Testing
import TestSupport

/// Command-line parity with the Python udocker 1.3.17 (issue 14): the forms users type in scripts.
@Suite("E2E CLI parity", e2eEnabled)
struct ParityTests {
    func busybox(_ name: String = #function) async throws -> (E2ESandbox, String) {
        let box = try sandbox(name)
        let id = try await box.pullAndCreate(box.env.busybox, name: "bb")
        return (box, id)
    }

    /// Adds an Entrypoint to the container's metadata (what an image with one would have given).
    func setEntrypoint(_ box: E2ESandbox, _ id: String, _ entrypoint: [String]) throws {
        let path = "\(box.containerDirectory(id))/container.json"
        let data = try #require(box.readFile(path)).data(using: .utf8)!
        var json = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        var config = json["config"] as? [String: Any] ?? [:]
        config["Entrypoint"] = entrypoint
        json["config"] = config
        let out = try JSONSerialization.data(withJSONObject: json)
        try box.writeUserFile(path, String(decoding: out, as: UTF8.self))
    }

    @Test("run CONTAINER tool --help runs tool --help; only options before the container are udocker's")
    func helpAfterContainerIsTheCommands() async throws {
        let (box, _) = try await busybox()
        let r = try await box.run(["bb", "sh", "-c", "echo \"$@\"", "x", "--help", "-h", "--opt=", "-e=1"])
        expectSuccess(r)
        #expect(r.stdout == "--help -h --opt= -e=1\n", "arguments after the container must reach the command untouched:\n\(r)")
        #expect(!r.stdout.contains("OVERVIEW"), "\(r)")
        let echo = try await box.run(["--nobanner", "bb", "echo", "--help"])
        expectSuccess(echo)
        #expect(echo.stdout == "--help\n", "\(echo)")
        // before the container it is ours
        for args in [["--help", "bb", "echo", "x"], ["-v", "/tmp:/mnt", "--help", "bb"]] {
            let help = try await box.run(args)
            expectSuccess(help)
            #expect(help.stdout.contains("--entrypoint"), "run's own help expected:\n\(help)")
            #expect(!help.stdout.contains("STARTING"), "\(help)")
        }
    }

    @Test("--entrypoint=\"\" and --entrypoint \"\" drop the image entrypoint; --entrypoint=X replaces it")
    func emptyEntrypoint() async throws {
        let (box, id) = try await busybox()
        try setEntrypoint(box, id, ["echo", "from-entrypoint"])
        let withImage = try await box.run(["--nobanner", "bb", "arg"])
        expectSuccess(withImage)
        #expect(withImage.stdout == "from-entrypoint arg\n", "the metadata entrypoint should run first:\n\(withImage)")
        for form in [["--entrypoint="], ["--entrypoint", ""]] {
            let r = try await box.run(["--nobanner"] + form + ["bb", "echo", "no-entrypoint"])
            expectSuccess(r)
            #expect(r.stdout == "no-entrypoint\n", "\(form) must drop the entrypoint, not eat the container name:\n\(r)")
        }
        let replaced = try await box.run(["--nobanner", "--entrypoint=sh", "bb", "-c", "echo a-b"])
        expectSuccess(replaced)
        #expect(replaced.stdout == "a-b\n", "\(replaced)")
    }

    @Test("valued options accept an empty value as --opt=\"\" and --opt \"\" (udocker: empty = unset)")
    func emptyValues() async throws {
        let (box, _) = try await busybox()
        for form in [["-w="], ["--workdir="], ["--workdir", ""], ["--user="], ["-u", ""], ["--kernel="], ["--cpuset-cpus="]] {
            let r = try await box.run(["--nobanner"] + form + ["bb", "pwd"])
            expectSuccess(r)
            #expect(r.stdout == "/tmp\n", "\(form): the image WorkingDir applies:\n\(r)")
        }
    }
}
