import Foundation
import Testing
import TestSupport
@testable import Engines
import OCI
import Store
#if canImport(Glibc)
import Glibc
#endif

/// A container made from busybox-static: containers/<id>/ROOT with /bin/busybox and applet links.
final class BusyboxContainer: @unchecked Sendable {
    let dir: TemporaryDirectory
    let id = "f1e2d3c4-b5a6-3978-8899-aabbccddeeff"
    var containerDir: String { dir.path + "/containers/\(id)" }
    var root: String { containerDir + "/ROOT" }
    var tmpDir: String { dir.path + "/tmp" }
    var hostDir: String { dir.path + "/host" }

    static let applets = [
        "sh", "cat", "id", "pwd", "env", "ls", "echo", "touch", "stat", "test", "mkdir", "true", "false", "sleep", "readlink", "head", "wc",
    ]
    static var busybox: String? { FileManager.default.isExecutableFile(atPath: "/usr/bin/busybox") ? "/usr/bin/busybox" : nil }

    init(passwd: Bool = true) throws {
        dir = try TemporaryDirectory(prefix: "udocker-engines")
        chmod(dir.path, 0o755)
        let fm = FileManager.default
        for d in ["bin", "etc", "dev", "proc", "sys", "root", "home/user", "usr/bin", "data"] {
            try fm.createDirectory(atPath: root + "/" + d, withIntermediateDirectories: true)
        }
        try fm.createDirectory(atPath: root + "/tmp", withIntermediateDirectories: true)
        chmod(root + "/tmp", 0o1777)
        try fm.createDirectory(atPath: tmpDir, withIntermediateDirectories: true)
        chmod(tmpDir, 0o1777)
        try fm.createDirectory(atPath: hostDir, withIntermediateDirectories: true)
        chmod(hostDir, 0o1777)
        try fm.copyItem(atPath: Self.busybox ?? "/bin/busybox", toPath: root + "/bin/busybox")
        for a in Self.applets { try fm.createSymbolicLink(atPath: root + "/bin/" + a, withDestinationPath: "busybox") }
        if passwd {
            try "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:User:/home/user:/bin/sh\n"
                .write(toFile: root + "/etc/passwd", atomically: false, encoding: .utf8)
            try "root:x:0:\nusers:x:1000:\n".write(toFile: root + "/etc/group", atomically: false, encoding: .utf8)
        }
        // Everything readable and traversable by other users (tests as `tester`).
        _ = shell("chmod -R a+rX '\(dir.path)'; chmod 1777 '\(root)/tmp' '\(tmpDir)' '\(hostDir)'")
    }

    func instance(config: ImageConfig.Config? = nil, names: [String] = ["busy"]) -> ContainerInstance {
        var c = ContainerInstance(
            id: id, directory: containerDir, names: names,
            imageConfig: config.map { ImageConfig(architecture: "amd64", os: "linux", config: $0) })
        // As `run` does: the repository records the mode a conversion ends in.
        let (directory, root) = (containerDir, c.root)
        c.recordMode = modeRecorder(directory: directory, root: root)
        return c
    }

    func environment(verbosity: Int = 1, host: [String: String]? = nil, sysdirs: [String]? = nil) -> EngineEnvironment {
        EngineEnvironment(
            tmpDir: tmpDir, binDir: dir.path + "/bin", sysdirs: sysdirs, verbosity: verbosity,
            hostEnvironment: host ?? [
                "PATH": "/usr/bin:/bin", "TERM": "xterm", "HOME": "/root",
                "SECRET_TOKEN": "s3cr3t", "USER": "root", "MYVAR": "from-host",
            ])
    }

    func write(_ text: String, to path: String) throws {
        try text.write(toFile: path, atomically: false, encoding: .utf8)
    }
}

struct RunResult {
    var status: Int32
    var output: String
    var error: String
}

enum EngineKind: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case native, proot
    var testDescription: String { rawValue }
}

/// Engine runs are serialised so that the signal-forwarding test can signal this process safely.
let engineLock = NSLock()

/// Runs an engine with stdout/stderr captured in files (and stdin from `input`).
func runEngine(
    _ kind: EngineKind, _ c: BusyboxContainer, _ options: RunOptions, config: ImageConfig.Config? = nil,
    input: String? = nil, environment: EngineEnvironment? = nil
) throws -> RunResult {
    try engineLock.withLock {
        try runEngineUnlocked(kind, c, options, config: config, input: input, environment: environment)
    }
}

func runEngineUnlocked(
    _ kind: EngineKind, _ c: BusyboxContainer, _ options: RunOptions, config: ImageConfig.Config? = nil,
    input: String? = nil, environment: EngineEnvironment? = nil
) throws -> RunResult {
    try withCapturedIO(c, input: input) { io in
        let env = environment ?? c.environment()
        let engine: any ExecutionEngine =
            kind == .native ? NativeEngine(environment: env, io: io) : PRootEngine(mode: .P1, environment: env, io: io)
        return try engine.run(c.instance(config: config), options: options)
    }
}

/// Runs `body` with stdin fed from `input` and stdout/stderr captured in files of the container
/// dir; returns the status `body` gave and what was written.
func withCapturedIO(_ c: BusyboxContainer, input: String?, _ body: (StandardIO) throws -> Int32) throws -> RunResult {
    let tag = UUID().uuidString
    let outPath = c.dir.path + "/out-\(tag)", errPath = c.dir.path + "/err-\(tag)", inPath = c.dir.path + "/in-\(tag)"
    let out = open(outPath, O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0o644)
    let err = open(errPath, O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0o644)
    try (input ?? "").write(toFile: inPath, atomically: false, encoding: .utf8)
    let inp = open(inPath, O_RDONLY | O_CLOEXEC)
    defer { close(out); close(err); close(inp); unlink(outPath); unlink(errPath); unlink(inPath) }
    let status = try body(StandardIO(input: inp, output: out, error: err))
    return RunResult(
        status: status,
        output: (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "",
        error: (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "")
}

func options(_ command: [String], _ configure: (inout RunOptions) -> Void = { _ in }) -> RunOptions {
    var o = RunOptions()
    o.command = command
    o.noBanner = true
    configure(&o)
    return o
}

@discardableResult
func shell(_ script: String) -> (Int32, String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/bin/sh")
    p.arguments = ["-c", script]
    let pipe = Pipe()
    p.standardOutput = pipe
    p.standardError = pipe
    do { try p.run() } catch { return (-1, "\(error)") }
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: data, as: UTF8.self))
}

let userNamespacesWork = EngineSelector.userNamespaceProblem() == nil
let prootAvailable = FileManager.default.isExecutableFile(atPath: "/usr/bin/proot")

/// The unprivileged account the engine tests switch to when they run as root:
/// `$UDOCKER_TEST_USER`, else `udtest` (created by scripts/test-deps.sh), else `tester`.
let unprivilegedUser: String? = {
    let candidates = [ProcessInfo.processInfo.environment["UDOCKER_TEST_USER"], "udtest", "tester"].compactMap { $0 }
    return candidates.first { getpwnam($0) != nil }
}()

/// This test binary, copied (once) where the unprivileged user can execute it: the checkout may
/// live under a home directory other users cannot enter. Its runpath is absolute, so it runs there.
let unprivilegedTestBinary: String = {
    let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    let dir = "/tmp/udocker-engine-tests-\(getpid())"
    let copy = "\(dir)/tests.xctest"
    // Copies left by earlier runs (about 100 MB each) are removed first.
    let (status, _) = shell(
        "rm -rf /tmp/udocker-engine-tests-*; mkdir -p '\(dir)' && chmod 755 '\(dir)' && cp '\(exe)' '\(copy)' && chmod 755 '\(copy)'")
    return status == 0 ? copy : exe
}()

/// Re-runs the tests matching `filter` of this binary as the unprivileged user, with `flag=1`.
func runAsUnprivileged(
    flag: String, filter: String, path: String = "/usr/sbin:/usr/bin:/sbin:/bin",
    extraEnvironment: String = ""
) -> (Int32, String) {
    guard let user = unprivilegedUser else { return (-1, "no unprivileged user") }
    return shell(
        "cd /tmp && runuser -u \(user) -- env -i PATH=\(path) HOME=/tmp TMPDIR=/tmp "
            + "\(flag)=1 \(extraEnvironment) '\(unprivilegedTestBinary)' --testing-library swift-testing --filter '\(filter)' 2>&1")
}

/// What `run` hands a container it read from the repository: Store records its mode.
func modeRecorder(directory: String, root: String) -> @Sendable (ExecutionMode) throws -> Void {
    { try ContainerMetadata.writeMode($0, directory: directory, root: root) }
}
