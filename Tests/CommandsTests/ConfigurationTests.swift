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

    /// Issue 24: `container_storage` is a configuration key like any other: listed by showconf,
    /// `UDOCKER_CONTAINER_STORAGE` over the files, `--storage` over both.
    @Test func containerStorageIsConfiguration() throws {
        let tmp = try TemporaryDirectory()
        try FileInfo.makeDirectories(tmp.sub("ud"))
        let base = ["HOME": tmp.sub("home"), "UDOCKER_DIR": tmp.sub("ud")]
        var c = try Configuration(environment: base, overrides: .init())
        #expect(c.order.contains("container_storage") && c["container_storage"] == "flat")
        try AtomicFile.write("[DEFAULT]\ncontainer_storage = overlay\n", to: tmp.sub("ud/udocker.conf"))
        c = try Configuration(environment: base, overrides: .init())
        #expect(try c.containerStorage(option: nil) == .overlay)
        #expect(try c.containerStorage(option: .flat) == .flat)
        c = try Configuration(environment: base.merging(["UDOCKER_CONTAINER_STORAGE": "flat"]) { $1 }, overrides: .init())
        #expect(try c.containerStorage(option: nil) == .flat)
        c = try Configuration(environment: base.merging(["UDOCKER_CONTAINER_STORAGE": "zfs"]) { $1 }, overrides: .init())
        #expect(throws: (any Error).self) { try c.containerStorage(option: nil) }
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

    /// Issue 23: what udocker's ConfigParser dies on is an error naming file, line, key and value;
    /// unknown keys and keys outside [DEFAULT] are warnings; continuation lines extend a value.
    @Test func brokenConfigFiles() throws {
        let tmp = try TemporaryDirectory()
        func load(_ text: String) throws -> Configuration {
            try AtomicFile.write(text, to: tmp.sub("c.conf"))
            var o = Configuration.Overrides()
            o.configFile = tmp.sub("c.conf")
            return try Configuration(environment: ["HOME": tmp.sub("home")], overrides: o)
        }
        func message(_ text: String) -> String {
            do { _ = try load(text); return "" } catch { return "\(error)" }
        }
        #expect(message("verbose_level = 4\n").contains("line 1: 'verbose_level' before any section header"))
        #expect(message("[DEFAULT]\nverbose_level = loud\n").contains("line 2: invalid verbose_level = loud: not a whole number"))
        #expect(message("[DEFAULT]\nhttp_insecure = maybe\n").contains("invalid http_insecure = maybe"))
        #expect(message("[DEFAULT]\ntransfer_min_rate = -1\n").contains("invalid transfer_min_rate = -1"))
        #expect(message("[DEFAULT]\njust words\n").contains("line 2: not a 'key = value' line"))
        #expect(message("[DEFAULT]\nx = \u{0}\n").contains("not a text file"))
        let c = try load("[DEFAULT]\nverbose_levle = 4\nsysdirs_list = /dev\n  /proc\n[other]\nkeystore = x\n")
        #expect(c.warnings.count == 2, "\(c.warnings)")
        #expect(c.warnings.first?.contains("line 2: unknown key verbose_levle = 4") == true)
        #expect(c.warnings.last?.contains("ignoring keystore in section [other]") == true)
        #expect(c["sysdirs_list"] == "/dev /proc")
        #expect(c["keystore"].hasSuffix("/keystore"))
        let quiet = try load(
            "[DEFAULT]\nhttp_insecure = False\npull_timeout = 2.5\ndefault_execution_mode = P1\ncontainer_storage = flat\n")
        #expect(quiet.warnings.isEmpty, "\(quiet.warnings)")
        #expect(throws: (any Error).self) {
            try Configuration(environment: ["HOME": tmp.sub("home"), "UDOCKER_LOGLEVEL": "abc"], overrides: .init())
        }
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

    @Test func barePullIsTheDefault() {
        #expect(RunCommand.bareDefaultPull(["--pull", "img", "true"]) == ["--pull=missing", "img", "true"])
        #expect(RunCommand.bareDefaultPull(["--pull", "never", "img"]) == ["--pull", "never", "img"])
        #expect(RunCommand.bareDefaultPull(["-v", "/a:/b", "--pull", "--rm", "img"]) == ["-v", "/a:/b", "--pull=missing", "--rm", "img"])
        #expect(RunCommand.bareDefaultPull(["img", "--pull"]) == ["img", "--pull"])  // the command's own argument
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
