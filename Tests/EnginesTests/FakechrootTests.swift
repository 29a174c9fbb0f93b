import Foundation
import Testing
import TestSupport
@testable import Engines
import OCI
import UDockerSystem
#if canImport(Glibc)
import Glibc
#endif

/// A Debian rootfs (the mmdebstrap minbase tarball the end-to-end fixtures cache) as a container.
final class DebianContainer: @unchecked Sendable {
    /// UDOCKER_FAKECHROOT_TEST_TAR (the outer test hands its private copy to the inner run), else
    /// the newest cached minbase tarball.
    static func findTarball() -> String? {
        if let t = ProcessInfo.processInfo.environment["UDOCKER_FAKECHROOT_TEST_TAR"], FileManager.default.fileExists(atPath: t) {
            return t
        }
        let dir = "/tmp/udocker-e2e/cache"
        let list = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        return list.filter { $0.hasPrefix("debian-bookworm") && $0.hasSuffix(".tar") }.sorted().last.map { dir + "/" + $0 }
    }
    static var available: Bool {
        findTarball() != nil && FileManager.default.fileExists(atPath: "/usr/lib/x86_64-linux-gnu/fakechroot/libfakechroot.so")
    }
    /// The rootfs extracted once per process; containers are copies of it.
    static let template: Result<String, UserCommandError> = {
        guard let tar = findTarball(), let dir = try? TemporaryDirectory(prefix: "udocker-fakechroot-template") else {
            return .failure(UserCommandError("no Debian tarball"))
        }
        templateDirectory = dir
        atexit { if let d = DebianContainer.templateDirectory { _ = shell("chmod -R u+w '\(d.path)'; rm -rf '\(d.path)'") } }
        let root = dir.path + "/ROOT"
        let (status, out) = shell(
            "mkdir -p '\(root)' && tar -xf '\(tar)' -C '\(root)' --no-same-owner --no-same-permissions --exclude='./dev/*' 2>&1")
        return status == 0 ? .success(root) : .failure(UserCommandError("tar: \(out)"))
    }()
    nonisolated(unsafe) static var templateDirectory: TemporaryDirectory?

    let dir: TemporaryDirectory
    let id = "0badc0de-1111-2222-3333-444455556666"
    var containerDir: String { dir.path + "/containers/\(id)" }
    var root: String { containerDir + "/ROOT" }
    var tmpDir: String { dir.path + "/tmp" }
    var hostDir: String { dir.path + "/host" }

    init() throws {
        dir = try TemporaryDirectory(prefix: "udocker-fakechroot")
        chmod(dir.path, 0o755)
        let fm = FileManager.default
        for d in [root, tmpDir, hostDir, dir.path + "/bin", dir.path + "/lib"] {
            try fm.createDirectory(atPath: d, withIntermediateDirectories: true)
        }
        let template = try Self.template.get()
        let (status, out) = shell("cp -a '\(template)/.' '\(root)/' 2>&1")
        guard status == 0 else { throw UserCommandError("cp: \(out)") }
        chmod(root, 0o755)
    }

    func instance() -> ContainerInstance {
        var config = ImageConfig.Config()
        config.env = ["PATH=/usr/local/bin:/usr/bin:/bin", "LD_PRELOAD=/evil.so"]
        var c = ContainerInstance(
            id: id, directory: containerDir, names: ["deb"],
            imageConfig: ImageConfig(architecture: "amd64", os: "linux", config: config))
        // As `run` does: the repository records the mode a conversion ends in.
        let (directory, root) = (containerDir, c.root)
        c.recordMode = modeRecorder(directory: directory, root: root)
        return c
    }

    func environment(_ extra: [String: String] = [:]) -> EngineEnvironment {
        EngineEnvironment(
            tmpDir: tmpDir, binDir: dir.path + "/bin", verbosity: 1,
            hostEnvironment: ["PATH": "/usr/bin:/bin", "TERM": "xterm", "HOME": "/tmp"].merging(extra) { $1 })
    }

    func setMode(_ m: ExecutionMode) throws {
        try FakechrootSetup.convert(directory: containerDir, root: root, to: m) { mode in
            try mode.rawValue.write(toFile: self.containerDir + "/execmode", atomically: true, encoding: .utf8)
        }
    }

    func run(_ engine: any ExecutionEngine, _ o: RunOptions, input: String? = nil) throws -> RunResult {
        let tag = UUID().uuidString
        let outPath = dir.path + "/out-\(tag)", errPath = dir.path + "/err-\(tag)", inPath = dir.path + "/in-\(tag)"
        let out = open(outPath, O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0o644)
        let err = open(errPath, O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0o644)
        try (input ?? "").write(toFile: inPath, atomically: false, encoding: .utf8)
        let inp = open(inPath, O_RDONLY | O_CLOEXEC)
        defer { close(out); close(err); close(inp); unlink(outPath); unlink(errPath); unlink(inPath) }
        let io = StandardIO(input: inp, output: out, error: err)
        var e = engine
        if var f = e as? FakechrootEngine { f.io = io; e = f } else if var p = e as? PRootEngine { p.io = io; e = p }
        let status = try e.run(instance(), options: o)
        return RunResult(
            status: status,
            output: (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "",
            error: (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "")
    }

    func run(_ mode: ExecutionMode, _ o: RunOptions, input: String? = nil, env: [String: String] = [:]) throws -> RunResult {
        try run(FakechrootEngine(mode: mode, environment: environment(env)), o, input: input)
    }

    /// Every file, link and its target, and regular files' checksums (for exact round trips).
    func fingerprint() -> String {
        shell(
            "cd '\(root)' && find . \\( -type l -printf '%p -> %l\\n' \\) -o \\( -type f -printf '%p %m ' -exec sha256sum {} + \\) | sort | sha256sum"
        ).1
    }
}

/// Fakechroot F1-F4 on a real Debian rootfs, as an unprivileged user: when the tests run as root,
/// `fakechrootAsTester` re-executes this test binary as `tester` with only `innerFakechroot…` enabled.
@Suite(.serialized) struct FakechrootTests {
    static let asUser = getuid() != 0 && DebianContainer.available

    @Test(.enabled(if: getuid() == 0 && (unprivilegedUser != nil) && !UnprivilegedTests.inner && DebianContainer.available))
    func fakechrootAsTester() throws {
        // A private copy: the fixtures may regenerate the cached tarball meanwhile.
        let copy = try TemporaryDirectory(prefix: "udocker-fakechroot-tar")
        chmod(copy.path, 0o755)
        let tar = copy.path + "/rootfs.tar"
        try FileManager.default.copyItem(atPath: try #require(DebianContainer.findTarball()), toPath: tar)
        chmod(tar, 0o644)
        let (status, output) = runAsUnprivileged(
            flag: "UDOCKER_ENGINES_AS_TESTER", filter: "innerFakechroot", path: "/usr/bin:/bin",
            extraEnvironment: "UDOCKER_FAKECHROOT_TEST_TAR='\(tar)'")
        #expect(status == 0, "\(output)")
        #expect(output.contains("innerFakechrootModes") && !output.contains("skipped") && output.contains("passed"), "\(output)")
    }

    @Test(.enabled(if: asUser), arguments: [ExecutionMode.F1, .F2, .F3, .F4])
    func innerFakechrootModes(_ mode: ExecutionMode) throws {
        let c = try DebianContainer()
        try c.setMode(mode)
        #expect(FakechrootSetup.convertedMode(directory: c.containerDir) == mode)
        for f in ["ld.so.path", "ld.lib.dirs", "fakechroot.mode"] {
            #expect(FileManager.default.fileExists(atPath: c.containerDir + "/" + f), "\(f)")
        }
        #expect(FileManager.default.fileExists(atPath: c.containerDir + "/ld.so.orig") == (mode != .F1))
        #expect(FileManager.default.fileExists(atPath: c.containerDir + "/patch.path") == (mode == .F3 || mode == .F4))
        if mode == .F3 || mode == .F4 {
            #expect(ELFPatcher.inspect(c.root + "/usr/bin/bash").interpreter == c.root + "/lib64/ld-linux-x86-64.so.2")
        }
        // Exit status, environment, image Env cannot steer the engine.
        let t = try c.run(mode, options(["/bin/true"]))
        #expect(t.status == 0, "\(t.error)")
        #expect(try c.run(mode, options(["sh", "-c", "exit 42"])).status == 42)
        let e = try c.run(
            mode,
            options(["sh", "-c", "echo $MYVAR $container_execmode; id -u; cat /etc/debian_version; echo $LD_PRELOAD"]) {
                $0.env = ["MYVAR=hello"]
            })
        #expect(e.status == 0, "\(e.error)")
        let lines = e.output.split(separator: "\n").map(String.init)
        #expect(lines.count == 4, "\(e.output) \(e.error)")
        #expect(lines.first == "hello \(mode.rawValue)")
        #expect(lines.dropFirst().first == String(getuid()))
        #expect(lines.dropFirst(2).first?.hasPrefix("12.") == true)
        #expect(lines.last?.hasSuffix("libfakechroot.so") == true && lines.last?.contains("evil") == false)
        // -w, and the cwd the program sees.
        let w = try c.run(mode, options(["sh", "-c", "pwd; /bin/pwd; ls -d usr"]) { $0.workdir = "/" })
        #expect(w.output == "/\n/\n usr\n".replacingOccurrences(of: " usr", with: "usr"), "\(w.error)")
        let w2 = try c.run(mode, options(["pwd"]) { $0.workdir = "/usr/share" })
        #expect(w2.output == "/usr/share\n", "\(w2.error)")
        // -v directory and file (same path inside: Debian's libfakechroot has no FAKECHROOT_DIR_MAP).
        try "in-host-dir\n".write(toFile: c.hostDir + "/f.txt", atomically: false, encoding: .utf8)
        let hostFile = c.dir.path + "/single.txt"
        try "single\n".write(toFile: hostFile, atomically: false, encoding: .utf8)
        let v = try c.run(
            mode,
            options(["sh", "-c", "cat \(c.hostDir)/f.txt; cat \(hostFile); echo new > \(c.hostDir)/g.txt"]) {
                $0.volumes = [c.hostDir, hostFile]
            })
        #expect(v.output == "in-host-dir\nsingle\n", "\(v.error)")
        #expect((try? String(contentsOfFile: c.hostDir + "/g.txt", encoding: .utf8)) == "new\n")
        // A mapped volume is refused clearly with this library.
        #expect(throws: EngineError.self) { try c.run(mode, options(["true"]) { $0.volumes = [c.hostDir + ":/data"] }) }
        // --hostauth: the host's user database.
        let me = String(cString: getpwuid(getuid())!.pointee.pw_name)
        let h = try c.run(mode, options(["id", "-un"]) { $0.hostauth = true })
        #expect(h.output == "\(me)\n", "\(h.error)")
        // stdin.
        let s = try c.run(mode, options(["sh", "-c", "tr a-z A-Z"]), input: "piped input\n")
        #expect(s.output == "PIPED INPUT\n", "\(s.error)")
        // A script with a shebang, run by name through PATH.
        try "#!/bin/bash -e\necho \"script:$0:$1:${BASH_VERSION%%.*}\"\n".write(
            toFile: c.root + "/usr/local/bin/hello.sh", atomically: false, encoding: .utf8)
        chmod(c.root + "/usr/local/bin/hello.sh", 0o755)
        let sc = try c.run(mode, options(["hello.sh", "arg1"]))
        #expect(sc.output == "script:/usr/local/bin/hello.sh:arg1:5\n", "\(sc.error)")
        // 10 MB of stdout, complete and in order.
        let big = try c.run(mode, options(["sh", "-c", "seq 1 1300000; head -c 1000000 /dev/zero | sha256sum"]))
        let expected = shell("seq 1 1300000; head -c 1000000 /dev/zero | sha256sum").1
        #expect(big.status == 0 && big.output.utf8.count == expected.utf8.count && big.output == expected, "\(big.error)")
        // --user other than the host user: a warning, and it runs as the host user.
        let u = try c.run(
            FakechrootEngine(
                mode: mode,
                environment: {
                    var e = c.environment(); e.verbosity = 2; return e
                }()), options(["id", "-u"]) { $0.user = "root" })
        #expect(u.output == "\(getuid())\n", "\(u.error)")
    }

    @Test(.enabled(if: asUser))
    func innerFakechrootRoundTrip() throws {
        let c = try DebianContainer()
        let original = c.fingerprint()
        try c.setMode(.F3)
        #expect(c.fingerprint() != original)
        #expect(try c.run(.F3, options(["sh", "-c", "ls /usr/bin | wc -l >/dev/null && echo ok"])).output == "ok\n")
        try c.setMode(.P1)
        #expect(c.fingerprint() == original)
        for f in ["ld.so.orig", "patch.path", "patch.time", "elf.patch.log", "fakechroot.mode", ".conversion"] {
            #expect(!FileManager.default.fileExists(atPath: c.containerDir + "/" + f), "\(f)")
        }
        if prootAvailable {
            let p = try c.run(PRootEngine(mode: .P1, environment: c.environment()), options(["sh", "-c", "echo p1; exit 3"]))
            #expect(p.status == 3 && p.output == "p1\n", "\(p.error)")
        }
        try c.setMode(.F3)
        #expect(try c.run(.F3, options(["sh", "-c", "echo again"])).output == "again\n")
        // F3 → F1 undoes the ELF and loader patches but keeps the links converted.
        try c.setMode(.F1)
        #expect(ELFPatcher.inspect(c.root + "/usr/bin/bash").interpreter == "/lib64/ld-linux-x86-64.so.2")
        #expect(try c.run(.F1, options(["echo", "f1"])).output == "f1\n")
        try c.setMode(.P2)
        #expect(c.fingerprint() == original)
    }

    @Test(.enabled(if: asUser))
    func innerFakechrootInterrupted() throws {
        let c = try DebianContainer()
        let original = c.fingerprint()
        // P1 → F3 interrupted after the journal, the links, and some binaries.
        try "F3".write(toFile: c.containerDir + "/.conversion", atomically: true, encoding: .utf8)
        try "F3".write(toFile: c.containerDir + "/execmode", atomically: true, encoding: .utf8)
        let p = FakechrootSetup.Paths(directory: c.containerDir, root: c.root)
        let scan = try FakechrootSetup.scanTree(p.root, wantELF: true)
        try FakechrootSetup.convertLinks(scan.absoluteLinks, root: p.root, oldRoots: [], toContainer: true)
        try FakechrootSetup.patchBinaries(p, files: Array(scan.elfCandidates.prefix(40)), log: { _ in })
        #expect(FakechrootSetup.isInterrupted(directory: c.containerDir))
        // The next run finishes it.
        let r = try c.run(.F3, options(["sh", "-c", "echo finished"]))
        #expect(r.output == "finished\n", "\(r.error)")
        #expect(!FakechrootSetup.isInterrupted(directory: c.containerDir))
        #expect(FakechrootSetup.convertedMode(directory: c.containerDir) == .F3)
        // F3 → P1 interrupted half-way (loader restored, binaries not): setup finishes it exactly.
        try "P1".write(toFile: c.containerDir + "/.conversion", atomically: true, encoding: .utf8)
        try FakechrootSetup.restoreLoader(p)
        try FakechrootSetup.convert(directory: c.containerDir, root: c.root, to: .P1) { _ in }
        #expect(c.fingerprint() == original)
    }

    @Test(.enabled(if: asUser))
    func innerFakechrootMissingLibrary() throws {
        let c = try DebianContainer()
        var engine = FakechrootEngine(mode: .F1, environment: c.environment())
        engine.systemLibraries = []
        do {
            _ = try engine.run(c.instance(), options: options(["true"]))
            Issue.record("expected an error")
        } catch let e as EngineError {
            #expect(e.kind == .toolNotFound && e.message.contains("fakechroot package"), "\(e.message)")
        }
    }
}
