import Foundation
import Testing
@testable import Engines
import OCI
#if canImport(Glibc)
import Glibc
#endif

private func plan(
    _ c: BusyboxContainer, _ o: RunOptions, config: ImageConfig.Config? = nil,
    environment: EngineEnvironment? = nil, mode: ExecutionMode = .N1
) throws -> ExecutionPlan {
    let p = try ExecutionPlan.make(
        container: c.instance(config: config), options: o,
        environment: environment ?? c.environment(), mode: mode)
    return p
}

private func expectError(_ fragment: String, _ body: () throws -> Void, sourceLocation: SourceLocation = #_sourceLocation) {
    do {
        try body()
        Issue.record("expected an error containing '\(fragment)'", sourceLocation: sourceLocation)
    } catch let e as EngineError {
        #expect(e.description.contains(fragment), "\(e.description)", sourceLocation: sourceLocation)
        #expect(!e.description.contains("\n"), sourceLocation: sourceLocation)
    } catch {
        Issue.record("unexpected error \(error)", sourceLocation: sourceLocation)
    }
}

@Suite struct EnvironmentPipelineTests {
    @Test func precedenceCommandLineOverImageOverEnvFile() throws {
        let c = try BusyboxContainer()
        let envFile = c.dir.path + "/vars.env"
        try c.write("# comment\n\nA=file\nB=file\nC=file\nD=file\n", to: envFile)
        var config = ImageConfig.Config()
        config.env = ["A=image", "B=image"]
        let p = try plan(
            c,
            options(["true"]) {
                $0.env = ["A=cli"]; $0.envFiles = [envFile]
            }, config: config)
        defer { p.removeTemporaryFiles() }
        #expect(p.environmentValue("A") == "cli")
        #expect(p.environmentValue("B") == "image")
        #expect(p.environmentValue("C") == "file")
        #expect(p.imageEnvironmentKeys == ["B"])
    }

    @Test func bareKeyCopiesTheHostValue() throws {
        let c = try BusyboxContainer()
        let p = try plan(c, options(["true"]) { $0.env = ["MYVAR", "UNSET_ON_HOST", "X=a=b"] })
        defer { p.removeTemporaryFiles() }
        #expect(p.environmentValue("MYVAR") == "from-host")
        #expect(p.environmentValue("UNSET_ON_HOST") == nil)
        #expect(p.environmentValue("X") == "a=b")
    }

    @Test func invalidKeysAreRejected() throws {
        let c = try BusyboxContainer()
        expectError("invalid environment variable: 1A=x") { _ = try plan(c, options(["true"]) { $0.env = ["1A=x"] }) }
        expectError("invalid environment variable: =x") { _ = try plan(c, options(["true"]) { $0.env = ["=x"] }) }
        expectError("--env-file not found: /nonexistent/env") { _ = try plan(c, options(["true"]) { $0.envFiles = ["/nonexistent/env"] }) }
    }

    @Test func hostEnvironmentIsFiltered() throws {
        let c = try BusyboxContainer()
        var host = c.environment().hostEnvironment
        host["VTE_VERSION"] = "1"
        let env = c.environment(host: host)
        let p = try plan(c, options(["true"]), environment: env)
        defer { p.removeTemporaryFiles() }
        #expect(p.environmentValue("TERM") == "xterm")
        #expect(p.environmentValue("SECRET_TOKEN") == nil)
        #expect(p.environmentValue("MYVAR") == nil)
        #expect(p.environmentValue("VTE_VERSION") == nil)
        // The container PATH, never the host's.
        #expect(p.environmentValue("PATH") == env.rootPath)
        let q = try plan(c, options(["true"]) { $0.hostenv = true }, environment: env)
        defer { q.removeTemporaryFiles() }
        #expect(q.environmentValue("SECRET_TOKEN") == "s3cr3t")
        #expect(q.environmentValue("VTE_VERSION") == nil)
        #expect(q.environmentValue("PATH") == env.rootPath)
    }

    @Test func pathDefaultsAndStandardVariables() throws {
        let c = try BusyboxContainer()
        let root = try plan(c, options(["true"]))
        defer { root.removeTemporaryFiles() }
        #expect(root.environmentValue("PATH") == "/usr/sbin:/sbin:/usr/bin:/bin")
        #expect(root.environmentValue("HOME") == "/root")
        #expect(root.environmentValue("USER") == "root")
        #expect(root.environmentValue("LOGNAME") == "root")
        #expect(root.environmentValue("PS1") == "f1e2d3c4# ")
        #expect(root.environmentValue("SHLVL") == "0")
        #expect(root.environmentValue("container_uuid") == c.id)
        #expect(root.environmentValue("container_root") == c.root)
        #expect(root.environmentValue("container_execmode") == "N1")
        #expect(root.environmentValue("container_names") == "busy")
        let user = try plan(c, options(["true"]) { $0.user = "user" })
        defer { user.removeTemporaryFiles() }
        #expect(user.environmentValue("PATH") == "/usr/sbin:/sbin:/usr/local/bin:/usr/bin:/bin")
        #expect(user.environmentValue("PS1") == "f1e2d3c4\\$ ")
        #expect(user.environmentValue("HOME") == "/home/user")
        var config = ImageConfig.Config()
        config.env = ["PATH=/opt/bin:/bin"]
        let image = try plan(c, options(["true"]), config: config)
        defer { image.removeTemporaryFiles() }
        #expect(image.environmentValue("PATH") == "/opt/bin:/bin")
    }

    @Test func nometaIgnoresTheImage() throws {
        let c = try BusyboxContainer()
        var config = ImageConfig.Config()
        config.env = ["FROM_IMAGE=1"]
        config.workingDir = "/nonexistent"
        config.user = "user"
        let p = try plan(c, options(["true"]) { $0.nometa = true }, config: config)
        defer { p.removeTemporaryFiles() }
        #expect(p.environmentValue("FROM_IMAGE") == nil)
        #expect(p.user.name == "root")
        #expect(p.cwd == "/root")
    }
}

@Suite struct UserPipelineTests {
    @Test func parsing() throws {
        #expect(try UserSpec.parse("1000:1001") == .uidGid(1000, 1001))
        #expect(try UserSpec.parse("1000") == .uid(1000))
        #expect(try UserSpec.parse("www-data") == .name("www-data"))
        for bad in ["a:b", "1000:", ":1", "1:2:3", "x/y", ""] {
            #expect(throws: EngineError.self) { try UserSpec.parse(bad) }
        }
    }

    @Test func namedUserFromTheContainerPasswd() throws {
        let c = try BusyboxContainer()
        let p = try plan(c, options(["true"]) { $0.user = "user" })
        defer { p.removeTemporaryFiles() }
        #expect(p.user == .init(name: "user", uid: 1000, gid: 1000, home: "/home/user", gecos: "User", shell: "/bin/sh"))
        #expect(p.cwd == "/home/user")
        #expect(p.warnings.isEmpty)
    }

    @Test func uidGidAndDefaults() throws {
        let c = try BusyboxContainer()
        let p = try plan(c, options(["true"]) { $0.user = "1000:1001" })
        defer { p.removeTemporaryFiles() }
        #expect(p.user.uid == 1000 && p.user.gid == 1001 && p.user.name == "user")
        var config = ImageConfig.Config()
        config.user = "user"
        let m = try plan(c, options(["true"]), config: config)
        defer { m.removeTemporaryFiles() }
        #expect(m.user.uid == 1000)
        let r = try plan(c, options(["true"]))
        defer { r.removeTemporaryFiles() }
        #expect(r.user.isRoot && r.user.home == "/root")
    }

    @Test func unknownUserIsCreatedInACopyOfPasswd() throws {
        let c = try BusyboxContainer()
        let p = try plan(c, options(["true"]) { $0.user = "4242:4343" })
        defer { p.removeTemporaryFiles() }
        #expect(p.user.name == "udoc4242")
        #expect(p.user.home == "/home/udoc4242")
        #expect(p.warnings.contains(.userWillBeCreated))
        #expect(p.cwd == "/")  // home missing in the container → "/" with a warning
        let passwd = try #require(p.mounts.first { $0.target == "/etc/passwd" })
        let group = try #require(p.mounts.first { $0.target == "/etc/group" })
        #expect(p.temporaryFiles.contains(passwd.source))
        #expect(passwd.source.hasPrefix(c.tmpDir + "/"))
        var st = stat()
        #expect(stat(passwd.source, &st) == 0 && st.st_mode & 0o777 == 0o600)
        let text = try String(contentsOfFile: passwd.source, encoding: .utf8)
        #expect(text.hasPrefix("root:x:0:0:root:/root:/bin/sh\n"))
        #expect(text.contains("udoc4242:x:4242:4343:*UDOCKER*:/home/udoc4242:/bin/sh\n"))
        #expect(try String(contentsOfFile: group.source, encoding: .utf8).contains(":x:4343:"))
        // The container's own files are untouched.
        #expect(try String(contentsOfFile: c.root + "/etc/passwd", encoding: .utf8).contains("udoc") == false)
        p.removeTemporaryFiles()
        #expect(access(passwd.source, F_OK) != 0)
    }

    @Test func existingUserIsNotDuplicated() throws {
        let c = try BusyboxContainer()
        let p = try plan(c, options(["true"]))
        defer { p.removeTemporaryFiles() }
        let passwd = try #require(p.mounts.first { $0.target == "/etc/passwd" })
        #expect(
            try String(contentsOfFile: passwd.source, encoding: .utf8)
                == "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:User:/home/user:/bin/sh\n")
    }

    @Test func containerauthAndHostauth() throws {
        let c = try BusyboxContainer()
        let ca = try plan(
            c,
            options(["true"]) {
                $0.containerauth = true; $0.user = "user"
            })
        #expect(!ca.mounts.contains { $0.target == "/etc/passwd" })
        #expect(ca.temporaryFiles.isEmpty)
        expectError("user not found: nobody-here") {
            _ = try plan(
                c,
                options(["true"]) {
                    $0.containerauth = true; $0.user = "nobody-here"
                })
        }
        expectError("user not found: nobody-here") {
            _ = try plan(
                c,
                options(["true"]) {
                    $0.hostauth = true; $0.user = "nobody-here"
                })
        }
        let ha = try plan(
            c,
            options(["true"]) {
                $0.hostauth = true; $0.user = "root"
            })
        defer { ha.removeTemporaryFiles() }
        let passwd = try #require(ha.mounts.first { $0.target == "/etc/passwd" })
        #expect(try String(contentsOfFile: passwd.source, encoding: .utf8) == String(contentsOfFile: "/etc/passwd", encoding: .utf8))
    }

    @Test func passwdReadThroughASymlinkStaysInsideTheRoot() throws {
        let c = try BusyboxContainer(passwd: false)
        // /etc/passwd -> /../../../../etc/passwd must read ROOT/etc/shadow-like content, not the host's.
        try FileManager.default.createDirectory(atPath: c.root + "/alt", withIntermediateDirectories: true)
        try c.write("alt:x:77:77::/:/bin/sh\n", to: c.root + "/alt/pw")
        try FileManager.default.createSymbolicLink(atPath: c.root + "/etc/passwd", withDestinationPath: "/../../../../../alt/pw")
        let p = try plan(c, options(["true"]) { $0.user = "alt" })
        defer { p.removeTemporaryFiles() }
        #expect(p.user.uid == 77)
        let q = try plan(c, options(["true"]) { $0.user = "daemon" })  // exists on the host only
        defer { q.removeTemporaryFiles() }
        #expect(q.warnings.contains(.userWillBeCreated))
    }
}

@Suite struct VolumePipelineTests {
    @Test func specValidation() throws {
        let c = try BusyboxContainer()
        expectError("host path must be absolute") { _ = try plan(c, options(["true"]) { $0.volumes = ["rel:/x"] }) }
        expectError("container path must be absolute") { _ = try plan(c, options(["true"]) { $0.volumes = ["/tmp:rel"] }) }
        expectError("container path cannot be /") { _ = try plan(c, options(["true"]) { $0.volumes = ["/tmp:/"] }) }
        expectError("container path cannot be /") { _ = try plan(c, options(["true"]) { $0.volumes = ["/tmp:/x/.."] }) }
        expectError("invalid host volume path: /nonexistent/dir") {
            _ = try plan(c, options(["true"]) { $0.volumes = ["/nonexistent/dir:/x"] })
        }
        expectError("the only options are :ro and :rw") { _ = try plan(c, options(["true"]) { $0.volumes = ["/tmp:/x:rx"] }) }
        let ro = try plan(c, options(["true"]) { $0.volumes = ["/tmp:/x:ro", "/tmp:/y:rw", "/tmp"] })
        defer { ro.removeTemporaryFiles() }
        #expect(
            ro.mounts.filter { !$0.isSysdir && $0.source == "/tmp" }.map { "\($0.target):\($0.readOnly)" } == [
                "/x:true", "/y:false", "/tmp:false",
            ])
        expectError("read-only volumes (-v host:cont:ro) are not supported by P1") {
            _ = try plan(c, options(["true"]) { $0.volumes = ["/tmp:/x:ro"] }, mode: .P1)
        }
    }

    @Test func orderSysdirsNovolAndBindhome() throws {
        let c = try BusyboxContainer()
        let env = c.environment(sysdirs: ["/dev", "/proc", "/nonexistent-sysdir"])
        let p = try plan(
            c,
            options(["true"]) {
                $0.volumes = [c.hostDir + ":/data", c.hostDir]; $0.noVolumes = ["/proc"]
            }, environment: env)
        defer { p.removeTemporaryFiles() }
        #expect(p.mounts.map(\.target) == ["/data", c.hostDir, "/dev", "/etc/passwd", "/etc/group"])
        #expect(p.mounts[0].isDirectory && !p.mounts[0].isSysdir && p.mounts[2].isSysdir)
        let q = try plan(
            c,
            options(["true"]) {
                $0.nosysdirs = true; $0.bindhome = true
            },
            environment: c.environment(host: ["HOME": c.hostDir]))
        defer { q.removeTemporaryFiles() }
        #expect(q.mounts.map(\.target) == ["/etc/passwd", "/etc/group", c.hostDir])
        #expect(q.environmentValue("HOME") == c.hostDir)
        #expect(q.cwd == c.hostDir)
    }

    @Test func userVolumeOnPasswdDisablesAuthHandling() throws {
        let c = try BusyboxContainer()
        let pw = c.hostDir + "/passwd"
        try c.write("someone:x:1234:1234::/:/bin/sh\n", to: pw)
        let p = try plan(
            c,
            options(["true"]) {
                $0.volumes = [pw + ":/etc/passwd"]; $0.user = "someone"; $0.nosysdirs = true
            })
        #expect(p.user.uid == 1234)
        #expect(p.mounts.map(\.target) == ["/etc/passwd"])
        #expect(p.temporaryFiles.isEmpty)
    }
}

@Suite struct CommandPipelineTests {
    @Test func workingDirectory() throws {
        let c = try BusyboxContainer()
        try FileManager.default.createSymbolicLink(atPath: c.root + "/work", withDestinationPath: "/data")
        try FileManager.default.createSymbolicLink(atPath: c.root + "/out", withDestinationPath: "../../../../../../..")
        try FileManager.default.createSymbolicLink(atPath: c.root + "/fd", withDestinationPath: "/proc/self/fd/3")
        let p = try plan(c, options(["true"]) { $0.workdir = "/work" })
        p.removeTemporaryFiles()
        #expect(p.cwd == "/work")
        let q = try plan(c, options(["true"]) { $0.workdir = "/out/tmp" })  // resolves to ROOT/tmp
        q.removeTemporaryFiles()
        #expect(q.cwd == "/out/tmp")
        expectError("invalid working directory: /nonexistent") { _ = try plan(c, options(["true"]) { $0.workdir = "/nonexistent" }) }
        expectError("invalid working directory: /bin/busybox") { _ = try plan(c, options(["true"]) { $0.workdir = "/bin/busybox" }) }
        expectError("invalid working directory: /proc/self/fd/3") { _ = try plan(c, options(["true"]) { $0.workdir = "/proc/self/fd/3" }) }
        expectError("invalid working directory: /fd") { _ = try plan(c, options(["true"]) { $0.workdir = "/fd" }) }
        expectError("must be absolute") { _ = try plan(c, options(["true"]) { $0.workdir = "data" }) }
        var config = ImageConfig.Config()
        config.workingDir = "/data"
        let m = try plan(c, options(["true"]), config: config)
        m.removeTemporaryFiles()
        #expect(m.cwd == "/data")
        // Inside a volume.
        try FileManager.default.createDirectory(atPath: c.hostDir + "/sub", withIntermediateDirectories: true)
        let v = try plan(
            c,
            options(["true"]) {
                $0.volumes = [c.hostDir + ":/vol"]; $0.workdir = "/vol/sub"
            })
        v.removeTemporaryFiles()
        #expect(v.cwd == "/vol/sub")
    }

    @Test func executableLookup() throws {
        let c = try BusyboxContainer()
        let fm = FileManager.default
        // /usr/bin/tool -> /bin/busybox through an absolute link, resolved inside ROOT.
        try fm.createSymbolicLink(atPath: c.root + "/usr/bin/tool", withDestinationPath: "/bin/busybox")
        // An absolute link that would reach a host executable if followed on the host.
        try fm.createSymbolicLink(atPath: c.root + "/usr/bin/hostsh", withDestinationPath: "/usr/bin/busybox")
        try c.write("data", to: c.root + "/usr/bin/noexec")
        var config = ImageConfig.Config()
        config.env = ["PATH=/usr/bin:/bin"]
        let p = try plan(c, options(["tool", "echo", "x"]), config: config)
        p.removeTemporaryFiles()
        #expect(p.executable == "/usr/bin/tool")
        #expect(p.arguments == ["tool", "echo", "x"])
        expectError("command not found or has no execute bit set: hostsh") { _ = try plan(c, options(["hostsh"]), config: config) }
        expectError("command not found or has no execute bit set: noexec") { _ = try plan(c, options(["noexec"]), config: config) }
        expectError("command not found or has no execute bit set: /bin") { _ = try plan(c, options(["/bin"])) }
        expectError("command not found or has no execute bit set: bash") { _ = try plan(c, options([])) }
        let rel = try plan(c, options(["./busybox", "true"]) { $0.workdir = "/bin" })
        rel.removeTemporaryFiles()
        #expect(rel.executable == "/bin/busybox")
    }

    @Test func entrypointAndCmd() throws {
        let c = try BusyboxContainer()
        var config = ImageConfig.Config()
        config.entrypoint = ["/bin/sh", "-c"]
        config.cmd = ["echo image"]
        let a = try plan(c, options([]), config: config)
        a.removeTemporaryFiles()
        #expect(a.arguments == ["/bin/sh", "-c", "echo image"])
        let b = try plan(c, options(["echo cli"]), config: config)
        b.removeTemporaryFiles()
        #expect(b.arguments == ["/bin/sh", "-c", "echo cli"])
        let d = try plan(c, options(["echo", "x"]) { $0.entrypoint = "" }, config: config)
        d.removeTemporaryFiles()
        #expect(d.arguments == ["echo", "x"])
        let e = try plan(c, options(["hi"]) { $0.entrypoint = "/bin/echo -n" }, config: config)
        e.removeTemporaryFiles()
        #expect(e.arguments == ["/bin/echo", "-n", "hi"])
    }

    @Test func bannerAndCPUSet() throws {
        let c = try BusyboxContainer()
        let p = try plan(c, options(["/bin/echo"]), mode: .P1)
        p.removeTemporaryFiles()
        let env = c.environment(verbosity: 3)
        var o = options(["/bin/echo"]); o.noBanner = false
        let text = try #require(p.banner(options: o, environment: env))
        let lines = text.split(separator: "\n").map(String.init)
        #expect(lines[0] == String(repeating: "*", count: 78))
        #expect(lines[2].count == 76 && lines[2].contains("STARTING \(c.id)"))
        #expect(lines[5] == "executing: echo")
        #expect(p.banner(options: options(["x"]), environment: env) == nil)
        o.noBanner = false
        #expect(p.banner(options: o, environment: c.environment(verbosity: 1)) == nil)
        #expect(try PlanBuilder.parseCPUSet("0,2-4") == [0, 2, 3, 4])
        #expect(throws: EngineError.self) { try PlanBuilder.parseCPUSet("1-") }
    }
}

@Suite struct MountPreparationTests {
    private func prepared(_ c: BusyboxContainer, _ o: RunOptions) throws -> [(source: String, target: String)] {
        let p = try ExecutionPlan.make(
            container: c.instance(), options: o, environment: c.environment(sysdirs: ["/dev", "/proc", "/etc/resolv.conf"]), mode: .N1)
        defer { p.removeTemporaryFiles() }
        return try MountPlan.resolve(p, messages: Messages(verbosity: 0)).map { ($0.source, $0.target) }
    }

    @Test func symlinkedMountpointsAreResolvedInsideTheRoot() throws {
        let c = try BusyboxContainer()
        let fm = FileManager.default
        try fm.createSymbolicLink(atPath: c.root + "/etc/resolv.conf", withDestinationPath: "/run/systemd/resolve/stub-resolv.conf")
        let m = try prepared(c, options(["true"]) { $0.nosysdirs = false })
        #expect(m.contains { $0.source == "/etc/resolv.conf" && $0.target == "/run/systemd/resolve/stub-resolv.conf" })
        var st = stat()
        #expect(lstat(c.root + "/run/systemd/resolve/stub-resolv.conf", &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG)
        // Parents come first.
        #expect(m.first?.target == "/dev" || m.first?.target == "/proc")
    }

    @Test func sysdirIntoAnotherMountOrOntoRootIsDropped() throws {
        let c = try BusyboxContainer()
        let fm = FileManager.default
        try fm.createSymbolicLink(atPath: c.root + "/etc/resolv.conf", withDestinationPath: "/proc/1/environ")
        try fm.removeItem(atPath: c.root + "/dev")
        try fm.createSymbolicLink(atPath: c.root + "/dev", withDestinationPath: "/")
        let m = try prepared(c, options(["true"]))
        #expect(m.map(\.target).sorted() == ["/etc/group", "/etc/passwd", "/proc"])
        #expect(!fm.fileExists(atPath: c.root + "/proc/1"))
    }

    @Test func userVolumeThroughASymlinkIntoASysdirIsAnError() throws {
        let c = try BusyboxContainer()
        try FileManager.default.createSymbolicLink(atPath: c.root + "/data/link", withDestinationPath: "/proc/sys")
        #expect(throws: EngineError.self) {
            _ = try self.prepared(c, options(["true"]) { $0.volumes = [c.hostDir + ":/data/link"] })
        }
    }
}
