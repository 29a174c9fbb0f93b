@testable import Commands
import UDockerSystem
import TestSupport
import Testing

@Suite struct ConfigurationTests {
    @Test func defaultsFollowHome() throws {
        let c = try Configuration(environment: ["HOME": "/home/u"], overrides: .init())
        #expect(c.topDirectory == "/home/u/.udocker")
        #expect(c.verbosity == 3)
        #expect(c["keystore"] == "/home/u/.udocker/keystore")
    }

    @Test func precedenceIsFilesThenEnvironmentThenOptions() throws {
        let tmp = try TemporaryDirectory()
        try FileInfo.makeDirectories(tmp.sub("home/.udocker"))
        try AtomicFile.write(
            "[DEFAULT]\nverbose_level = 4\ntmpdir = \"/quoted/tmp\"\nuse_proot_executable=/from/home\n",
            to: tmp.sub("home/.udocker/udocker.conf"))
        try AtomicFile.write("[DEFAULT]\nuse_proot_executable: /from/config\n", to: tmp.sub("extra.conf"))
        var o = Configuration.Overrides()
        o.configFile = tmp.sub("extra.conf")
        let env = ["HOME": tmp.sub("home"), "UDOCKER_DIR": tmp.sub("ud"), "UDOCKER_LOGLEVEL": "2"]
        var c = try Configuration(environment: env, overrides: o)
        #expect(c.topDirectory == tmp.sub("ud"))  // env beats files
        #expect(c.verbosity == 2)  // env beats the home file
        #expect(c.tmpDirectory == "/quoted/tmp")  // quotes removed (udocker #405)
        #expect(c["use_proot_executable"] == "/from/config")  // --config beats the home file
        o.quiet = true
        o.repo = tmp.sub("other")
        c = try Configuration(environment: env, overrides: o)
        #expect(c.verbosity == 1)  // -q beats UDOCKER_LOGLEVEL
        #expect(c.topDirectory == tmp.sub("other"))  // --repo beats UDOCKER_DIR
    }

    @Test func udockerDirConfigIsRead() throws {
        let tmp = try TemporaryDirectory()
        try FileInfo.makeDirectories(tmp.sub("ud"))
        try AtomicFile.write("[DEFAULT]\noverride_default_execution_mode = P2\n", to: tmp.sub("ud/udocker.conf"))
        let c = try Configuration(environment: ["HOME": tmp.sub("home"), "UDOCKER_DIR": tmp.sub("ud")], overrides: .init())
        #expect(c["override_default_execution_mode"] == "P2")
        let e = try Configuration(
            environment: ["HOME": tmp.sub("home"), "UDOCKER_DIR": tmp.sub("ud"), "UDOCKER_DEFAULT_EXECUTION_MODE": "N1"], overrides: .init()
        )
        #expect(e["override_default_execution_mode"] == "N1")
    }

    @Test func missingConfigFileIsAnError() {
        var o = Configuration.Overrides()
        o.configFile = "/nonexistent/udocker.conf"
        #expect(throws: (any Error).self) { try Configuration(environment: ["HOME": "/h"], overrides: o) }
    }
}

@Suite struct ArgumentNormalizerTests {
    @Test func shortOptionsWithEqualsAreSplit() {
        #expect(
            ArgumentNormalizer.splitShortEquals(["-v=/a:/b", "-e=X=1", "--env=Y=2", "-l"]) == [
                "-v", "/a:/b", "-e", "X=1", "--env=Y=2", "-l",
            ])
        #expect(ArgumentNormalizer.splitShortEquals(["--name=", "-w=", "--entrypoint=", "x"]) == ["--entrypoint", "", "x"])
        #expect(
            ArgumentNormalizer.dropEmptyValues(
                ["--name", "", "--entrypoint", "", "-v", "/a", "c", "--", "-w", ""],
                valued: ["--name", "--entrypoint", "-v", "-w"])
                == ["--entrypoint", "", "-v", "/a", "c", "--", "-w", ""])
    }

    @Test func runOptionsStopAtTheContainer() {
        let args = RunCommand.normalize(["--rm", "-v", "/tmp:/mnt", "-e=X=1", "c7", "ls", "-l", "--rm"])
        #expect(args == ["--rm", "-v", "/tmp:/mnt", "-e", "X=1", "c7", "--", "ls", "-l", "--rm"])
        #expect(RunCommand.normalize(["--name=x", "img"]) == ["--name=x", "img"])
    }

    @Test func runParsesUdockerStyle() throws {
        let cmd = try RunCommand.parse(
            RunCommand.normalize(["--rm", "-e", "X=1", "-v", "/tmp:/mnt", "-w", "/mnt", "deb", "sh", "-c", "echo $X; exit 42"]))
        #expect(cmd.rm)
        #expect(cmd.env == ["X=1"])
        #expect(cmd.volumes == ["/tmp:/mnt"])
        #expect(cmd.workdir == "/mnt")
        #expect(cmd.target == "deb")
        #expect(cmd.command.filter { $0 != "--" } == ["sh", "-c", "echo $X; exit 42"])
    }
}
