import Foundation
import Testing
import TestSupport

/// Help, version, configuration, repositories and bad input.
@Suite("E2E CLI basics", e2eEnabled)
struct CLITests {
    @Test(
        "--help, help and <cmd> --help print help and exit 0",
        arguments: [["--help"], ["-h"], ["help"], ["run", "--help"], ["pull", "--help"]])
    func help(args: [String]) async throws {
        let box = try sandbox()
        let r = try await box.udocker(args)
        expectSuccess(r)
        #expect(!r.stdout.isEmpty, "\(r)")
        if args.count == 1 {
            for word in ["pull", "images", "create", "run", "rm", "rmi", "ps"] {
                #expect(r.stdout.contains(word), "general help should mention \(word):\n\(r)")
            }
        }
    }

    @Test("version and --version print 'version: <x.y.z>'", arguments: [["version"], ["--version"], ["-V"]])
    func version(args: [String]) async throws {
        let box = try sandbox()
        let r = try await box.udocker(args)
        expectSuccess(r)
        let line = try #require(r.stdoutLines.first { $0.hasPrefix("version: ") }, "\(r)")
        let v = line.dropFirst("version: ".count).split(separator: ".")
        #expect(v.count >= 2 && v.allSatisfy { Int($0) != nil }, "\(r)")
    }

    @Test("version lists the engines only with --engines (the probe forks; plain version does not)")
    func versionEngines() async throws {
        let box = try sandbox()
        let plain = try await box.udocker(["version"])
        expectSuccess(plain)
        #expect(!plain.stdout.contains("engine "), "\(plain)")
        #expect(plain.stdoutLines.contains { $0.hasPrefix("udocker-swift: ") }, "\(plain)")
        let engines = try await box.udocker(["version", "--engines"])
        expectSuccess(engines)
        for family in ["engine N1:", "engine P1 P2:", "engine F1 F2 F3 F4:", "engine R1 R2 R3:", "engine S1:"] {
            #expect(engines.stdoutLines.contains { $0.hasPrefix(family) }, "\(family)\n\(engines)")
        }
        #expect(engines.stdoutLines.first == plain.stdoutLines.first, "\(engines)")
    }

    @Test("showconf lists the configuration, including topdir = $UDOCKER_DIR")
    func showconf() async throws {
        let box = try sandbox()
        let r = try await box.udocker(["showconf"])
        expectSuccess(r)
        #expect(r.stdoutLines.contains { $0.hasPrefix("topdir") && $0.hasSuffix(box.udockerDir) }, "\(r)")
        #expect(r.stdoutLines.contains { $0.hasPrefix("verbose_level") }, "\(r)")
    }

    @Test("a repository is created on first use with udocker's tree")
    func repositoryCreatedOnFirstUse() async throws {
        let box = try sandbox()
        #expect(!box.exists(box.udockerDir))
        expectSuccess(try await box.udocker(["images"]))
        for d in ["repos", "layers", "containers"] {
            #expect(box.exists("\(box.udockerDir)/\(d)"), "missing \(d)/ in a new repository")
        }
    }

    @Test("mkrepo creates a repository usable with --repo, and refuses an existing dir")
    func mkrepo() async throws {
        let box = try sandbox()
        let dir = "\(box.scratch)/newrepo"
        expectSuccess(try await box.udocker(["mkrepo", dir]))
        for d in ["repos", "layers", "containers"] { #expect(box.exists("\(dir)/\(d)"), "mkrepo did not create \(d)/") }
        let images = try await box.udocker(["--repo=\(dir)", "images"])
        expectSuccess(images)
        #expect(images.stdoutLines == ["REPOSITORY"], "\(images)")
        let again = try await box.udocker(["mkrepo", dir])
        expectOneLineError(again)
    }

    @Test("unknown command → one-line error, exit 1")
    func unknownCommand() async throws {
        let box = try sandbox()
        expectOneLineError(try await box.udocker(["frobnicate"]))
    }

    @Test("create of an image that is not in the repository → one-line error, exit 1")
    func createUnknownImage() async throws {
        let box = try sandbox()
        expectOneLineError(try await box.udocker(["create", "\(box.env.registry)/library/notpulled:latest"]))
        #expect(try await box.psLines().isEmpty)
    }

    @Test("pull of an image the registry does not have → one-line error, exit 1, nothing stored")
    func pullUnknownImage() async throws {
        let box = try sandbox()
        expectOneLineError(try await box.udocker(["pull", "\(box.env.registry)/library/doesnotexist:latest"]))
        expectOneLineError(try await box.udocker(["pull", "\(box.env.registry)/library/busybox:nosuchtag"]))
        #expect(try await box.imageLines().isEmpty)
    }

    @Test(
        "bad image references → one-line error, exit 1",
        arguments: [
            "bad ref", "busybox:", "127.0.0.1:5000/library/busybox::x", "127.0.0.1:5000/library/busybox@sha256:xyz",
            "127.0.0.1:5000//busybox",
        ])
    func badReference(ref: String) async throws {
        let box = try sandbox()
        let r = try await box.udocker(["pull", ref])
        expectOneLineError(r)
    }

    @Test(
        "unknown container → one-line error, exit 1",
        arguments: [
            ["rm", "11111111-2222-3333-4444-555555555555"], ["rm", "nosuchname"], ["rmname", "nosuchname"],
            ["inspect", "-p", "nosuchname"], ["setup", "--execmode=P1", "nosuchname"],
            ["name", "11111111-2222-3333-4444-555555555555", "alias"],
        ])
    func unknownContainer(args: [String]) async throws {
        let box = try sandbox()
        expectOneLineError(try await box.udocker(args))
    }

    @Test("rmi of a tag that is not there → one-line error, exit 1")
    func rmiUnknown() async throws {
        let box = try sandbox()
        expectOneLineError(try await box.udocker(["rmi", "\(box.env.registry)/library/busybox:nosuchtag"]))
    }

    @Test("run refuses to run as root without --allow-root (when the tests run as root)")
    func refusesRoot() async throws {
        let env = try E2EEnvironment.load()
        guard geteuid() == 0 else { return }
        let box = try E2ESandbox(env, name: "root")
        let root = UserCommand(user: nil, environment: box.baseEnvironment, workingDirectory: box.path, timeout: .seconds(60))
        let r = try await root.run(env.binary, ["images"])
        expectOneLineError(r, mentioning: ["root"])
    }
}
