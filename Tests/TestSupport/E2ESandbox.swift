import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A per-test directory owned by the test user, under `E2EEnvironment.home`:
///
///     <sandbox>/home      HOME (keystore: home/.udocker/keystore)
///     <sandbox>/udocker   UDOCKER_DIR (not created: the tools create the repository)
///     <sandbox>/tmp       TMPDIR
///     <sandbox>/scratch   free space for volumes and files
///
/// Commands run as the test user through `UserCommand`, with exactly `baseEnvironment`
/// (+ per-call additions) and the sandbox as working directory. Removed on `remove()` / deinit
/// unless `UDOCKER_E2E_KEEP=1`.
public final class E2ESandbox: @unchecked Sendable {
    public let env: E2EEnvironment
    public let path: String
    public var home: String { "\(path)/home" }
    public var udockerDir: String { "\(path)/udocker" }
    public var tmp: String { "\(path)/tmp" }
    public var scratch: String { "\(path)/scratch" }
    private var removed = false

    public static let defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

    public init(_ env: E2EEnvironment, name: String = "t") throws {
        self.env = env
        let safe = String(name.map { $0.isLetter || $0.isNumber ? $0 : "-" }.prefix(40))
        var template = Array("\(env.home)/\(safe)-XXXXXX".utf8CString)
        guard let p = mkdtemp(&template) else {
            throw UserCommandError("mkdtemp under \(env.home) failed: errno \(errno)")
        }
        path = String(cString: p)
        chmod(path, 0o755)
        try chownToUser(path)
        for d in [home, tmp, scratch] { try makeUserDirectory(d) }
    }

    deinit { remove() }

    public func remove() {
        guard !removed else { return }
        removed = true
        if E2EEnvironment.keepSandboxes { return }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", "chmod -R u+rwX \"$1\" 2>/dev/null; rm -rf \"$1\"", "sh", path]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try? p.run()
        p.waitUntilExit()
    }

    // MARK: files owned by the test user

    var switchesUser: Bool { geteuid() == 0 && env.user != "root" }

    public func chownToUser(_ p: String) throws {
        guard switchesUser else { return }
        let (uid, gid) = try UserCommand.ids(of: env.user)
        if lchown(p, uid, gid) != 0 { throw UserCommandError("chown \(p) failed: errno \(errno)") }
    }

    /// `mkdir -p`, every created component owned by the test user.
    public func makeUserDirectory(_ p: String, mode: mode_t = 0o755) throws {
        var created: [String] = []
        var cur = p
        while !FileManager.default.fileExists(atPath: cur) {
            created.append(cur)
            cur = (cur as NSString).deletingLastPathComponent
        }
        for d in created.reversed() {
            if mkdir(d, mode) != 0 && errno != EEXIST { throw UserCommandError("mkdir \(d) failed: errno \(errno)") }
            try chownToUser(d)
        }
    }

    /// Writes a file owned by the test user (parents created).
    public func writeUserFile(_ p: String, _ contents: String, mode: mode_t = 0o644) throws {
        try makeUserDirectory((p as NSString).deletingLastPathComponent)
        guard FileManager.default.createFile(atPath: p, contents: Data(contents.utf8)) else {
            throw UserCommandError("cannot write \(p)")
        }
        chmod(p, mode)
        try chownToUser(p)
    }

    // MARK: commands

    public var baseEnvironment: [String: String] {
        ["HOME": home, "UDOCKER_DIR": udockerDir, "PATH": Self.defaultPath, "TMPDIR": tmp, "LANG": "C.UTF-8"]
    }

    public func command(environment extra: [String: String] = [:], timeout: Duration = .seconds(300)) -> UserCommand {
        UserCommand(user: env.user, environment: baseEnvironment.merging(extra) { $1 }, workingDirectory: path, timeout: timeout)
    }

    /// Our binary: `udocker <args>`.
    public func udocker(
        _ args: [String], environment extra: [String: String] = [:], stdin: String? = nil,
        timeout: Duration = .seconds(300)
    ) async throws -> CommandResult {
        try await command(environment: extra, timeout: timeout).run(env.binary, args, stdin: stdin)
    }

    public func udocker(_ args: String..., environment extra: [String: String] = [:], stdin: String? = nil) async throws -> CommandResult {
        try await udocker(args, environment: extra, stdin: stdin)
    }

    /// Any program as the test user (`sh -c`, `ls`, ...).
    public func shell(_ script: String, environment extra: [String: String] = [:]) async throws -> CommandResult {
        try await command(environment: extra).run("/bin/sh", ["-c", script])
    }

    /// The Python udocker 1.3.17 on the same UDOCKER_DIR and HOME.
    ///
    /// Keeping it offline: every command except install/version/showconf first runs
    /// `do_install`, which downloads udockertools when `$UDOCKER_DIR/lib/VERSION` is missing or
    /// older than `tarball_release` (1.2.11). Writing `lib/VERSION` = `1.2.11` marks the tools as
    /// installed. (`autoinstall = False` in a config file does NOT work: config values are
    /// strings, and the string "False" is truthy. `UDOCKER_TARBALL` pointing nowhere only makes
    /// the install fail noisily, three times.) The engines then come from the host: proot,
    /// runc and patchelf in PATH or `UDOCKER_USE_*_EXECUTABLE`, libfakechroot via
    /// `UDOCKER_FAKECHROOT_SO`.
    ///
    /// Pulling: pass `UDOCKER_REGISTRY=http://<registry>` and a name WITHOUT the host
    /// (`library/busybox`); 1.3.17 mis-splits `host:port/name` (see the reference, §11).
    public func python(
        _ args: [String], environment extra: [String: String] = [:], stdin: String? = nil,
        timeout: Duration = .seconds(300)
    ) async throws -> CommandResult {
        try seedPythonTools()
        return try await command(environment: extra, timeout: timeout).run(env.pythonUdocker, args, stdin: stdin)
    }

    /// Creates `$UDOCKER_DIR/lib/VERSION` (1.2.11) so the Python udocker does not download udockertools.
    public func seedPythonTools() throws {
        let version = "\(udockerDir)/lib/VERSION"
        if !FileManager.default.fileExists(atPath: version) {
            try writeUserFile(version, "1.2.11\n")
        }
    }

    /// The udocker keystore (`$HOME/.udocker/keystore`, mode 600) with Basic credentials for a
    /// registry, in udocker's format: `{"<registry url>": {"auth": base64(user:pass), "email": ""}}`.
    public func writeKeystore(registryURL: String, user: String, password: String) throws {
        let auth = Data("\(user):\(password)".utf8).base64EncodedString()
        let json = "{\"\(registryURL)\": {\"auth\": \"\(auth)\", \"email\": \"\"}}"
        try makeUserDirectory("\(home)/.udocker", mode: 0o700)
        try writeUserFile("\(home)/.udocker/keystore", json, mode: 0o600)
    }

    // MARK: repository inspection (read directly; the test process can read the user's files)

    public func exists(_ p: String) -> Bool { FileManager.default.fileExists(atPath: p) }

    public func isSymlink(_ p: String) -> Bool {
        var st = stat()
        return lstat(p, &st) == 0 && (st.st_mode & S_IFMT) == S_IFLNK
    }

    public func readFile(_ p: String) -> String? {
        (try? Data(contentsOf: URL(fileURLWithPath: p))).map { String(decoding: $0, as: UTF8.self) }
    }

    public func listDirectory(_ p: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: p)) ?? []).sorted()
    }

    /// `repos/<name>/<tag>` for `name:tag` (the name as typed, host included).
    public func tagDirectory(_ image: String) -> String {
        let (name, tag) = Self.splitImage(image)
        return "\(udockerDir)/repos/\(name)/\(tag)"
    }

    public var layersDirectory: String { "\(udockerDir)/layers" }
    public var containersDirectory: String { "\(udockerDir)/containers" }
    public func containerDirectory(_ id: String) -> String { "\(containersDirectory)/\(id)" }
    public func containerRoot(_ id: String) -> String { "\(containersDirectory)/\(id)/ROOT" }

    /// `host:5000/a/b:tag` → (`host:5000/a/b`, `tag`); default tag `latest`.
    public static func splitImage(_ image: String) -> (String, String) {
        let lastSlash = image.lastIndex(of: "/")
        if let colon = image.lastIndex(of: ":"), lastSlash == nil || colon > lastSlash! {
            return (String(image[..<colon]), String(image[image.index(after: colon)...]))
        }
        return (image, "latest")
    }

    /// sha256 hex of a file (via sha256sum; TestSupport has no crypto dependency).
    public func sha256(_ p: String) -> String? {
        let proc = Process()
        proc.executableURL = URL(fileURLWithPath: "/usr/bin/sha256sum")
        proc.arguments = [p]
        let pipe = Pipe()
        proc.standardOutput = pipe
        proc.standardError = FileHandle.nullDevice
        guard (try? proc.run()) != nil else { return nil }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        proc.waitUntilExit()
        guard proc.terminationStatus == 0 else { return nil }
        return String(decoding: data, as: UTF8.self).split(separator: " ").first.map(String.init)
    }

    /// Every path below `root` (relative), not following symlinks.
    public func walk(_ root: String) -> [String] {
        guard let e = FileManager.default.enumerator(atPath: root) else { return [] }
        var out: [String] = []
        while let item = e.nextObject() as? String { out.append(item) }
        return out.sorted()
    }
}
