import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import UDockerSystem

/// Docker's logins, read from `config.json` (`$DOCKER_CONFIG/config.json`, else
/// `~/.docker/config.json`), in Docker's own order for one registry:
///   1. `credHelpers[host]`: `docker-credential-<helper> get` (host on stdin, `{"Username",
///      "Secret"}` on stdout);
///   2. `auths[host].auth` (base64 `user:password`, or `username`/`password`);
///   3. `credsStore`: the same protocol for every registry.
/// A helper that is missing, fails, or answers nothing usable is skipped (said under `-D`).
/// Answers are cached for the life of the object (one pull asks once per registry).
public final class DockerCredentials: @unchecked Sendable {
    public let path: String
    private var auths: [String: String] = [:]
    private var helpers: [String: String] = [:]
    private var store: String?
    /// Why the file or an entry was not used; for the CLI to print.
    public private(set) var warnings: [String] = []
    private let lock = ConditionLock()
    private var cache: [String: String?] = [:]
    /// Why a helper gave nothing for a server (not found, failed, unusable answer): said in the
    /// error when the registry then wants credentials.
    private var problems: [String: String] = [:]
    /// Seconds a helper may take before it is killed.
    static let helperTimeout: Double = 30

    public init(path: String) {
        self.path = path
        guard FileManager.default.fileExists(atPath: path) else { return }
        guard let data = FileManager.default.contents(atPath: path), data.count <= 4 << 20,
            let json = JSONAny.object(data)
        else {
            warnings.append("ignoring \(path): not a JSON object"); return
        }
        auths = Self.authTable(json["auths"] as? [String: Any] ?? [:])
        for (key, value) in json["credHelpers"] as? [String: Any] ?? [:] {
            guard let name = value as? String, !name.isEmpty else { continue }
            guard Self.validHelperName(name) else {
                warnings.append("ignoring credential helper '\(name)' in \(path): not a plain name"); continue
            }
            helpers[CredentialStore.normalize(key)] = name
        }
        if let name = json["credsStore"] as? String, !name.isEmpty {
            if Self.validHelperName(name) {
                store = name
            } else {
                warnings.append("ignoring credsStore '\(name)' in \(path): not a plain name")
            }
        }
    }

    /// `{"<registry>": {"auth": base64} | {"username", "password"}}` (udocker's keystore, Docker's
    /// `auths`) → normalised key → base64 `user:password`.
    static func authTable(_ table: [String: Any]) -> [String: String] {
        var out: [String: String] = [:]
        for (key, value) in table {
            guard let obj = value as? [String: Any] else { continue }
            var auth = (obj["auth"] as? String).flatMap { $0.isEmpty ? nil : $0 }
            if auth == nil, let u = obj["username"] as? String, let p = obj["password"] as? String {
                auth = Data("\(u):\(p)".utf8).base64EncodedString()
            }
            if let auth { out[CredentialStore.normalize(key)] = auth }
        }
        return out
    }

    /// `docker-credential-<name>` must be a program name found on PATH, never a path.
    static func validHelperName(_ name: String) -> Bool {
        name.utf8.count <= 64
            && name.utf8.allSatisfy { c in
                (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c == 0x2d || c == 0x5f || c == 0x2e
            } && !name.hasPrefix(".")
    }

    public var isEmpty: Bool { auths.isEmpty && helpers.isEmpty && store == nil }

    /// Base64 `user:password` for a normalised registry key (`host[:port]`), or nil.
    func authorization(forKey key: String) -> String? {
        lock.lock()
        if let hit = cache[key] { lock.unlock(); return hit }
        lock.unlock()
        let hub = CredentialStore.dockerHubAliases.contains(key)
        let keys = hub ? [key] + CredentialStore.dockerHubAliases.sorted().filter { $0 != key } : [key]
        var result: String?
        // Docker's server address for Docker Hub is its v1 index URL.
        let server = hub ? "https://index.docker.io/v1/" : key
        if let name = keys.lazy.compactMap({ self.helpers[$0] }).first {
            result = helperGet(name, server: server)
        }
        if result == nil { result = keys.lazy.compactMap({ self.auths[$0] }).first }
        if result == nil, let store { result = helperGet(store, server: server) }
        lock.lock(); cache[key] = result; lock.unlock()
        return result
    }

    /// Runs `docker-credential-<name> get` with the server on stdin.
    func helperGet(_ name: String, server: String) -> String? {
        let program = "docker-credential-\(name)"
        let env = ProcessInfo.processInfo.environment
        // Absolute PATH entries only (as Docker's own lookup and ToolLocator): an empty entry,
        // `.` or `bin` would run a helper from whatever directory the user is in.
        let dirs = (env["PATH"] ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":").map(String.init).filter { $0.hasPrefix("/") }
        guard let exe = dirs.map({ (dir: String) -> String in "\(dir)/\(program)" }).first(where: { access($0, X_OK) == 0 }) else {
            note("\(program) not found on PATH: Docker's credentials for \(server) are not used")
            problem(server, "credential helper \(program) (named in \(path)) not found on PATH")
            return nil
        }
        let result: Subprocess.Result
        do {
            result = try Subprocess.run(exe, ["get"], input: Array((server + "\n").utf8), timeout: Self.helperTimeout)
        } catch {
            note("\(exe) could not be started: \(error)")
            problem(server, "credential helper \(exe) could not be started")
            return nil
        }
        guard result.succeeded else {
            let how = result.exitStatus.map { "exit \($0)" } ?? "killed"
            note("\(program) get \(server): \(how) (no credentials)")
            problem(server, "credential helper \(program) failed (\(how))")
            return nil
        }
        let data = result.output
        guard data.count <= 1 << 20,
            let obj = JSONAny.object(data),
            let user = obj["Username"] as? String, let secret = obj["Secret"] as? String, !secret.isEmpty
        else {
            note("\(program) get \(server): no {Username, Secret} in its answer")
            problem(server, "credential helper \(program) gave no {Username, Secret}")
            return nil
        }
        // An identity token (Username "<token>") is an OAuth refresh token, not a password.
        guard user != "<token>" else { note("\(program): identity tokens are not supported"); return nil }
        note("credentials for \(server) from \(program)")
        return Data("\(user):\(secret)".utf8).base64EncodedString()
    }

    /// What the helpers did, under `-D` (the one output channel: a `Logger` nobody set up
    /// printed nothing).
    private func note(_ s: String) { Output().debug(s) }

    private func problem(_ server: String, _ text: String) {
        lock.lock(); problems[server] = text; lock.unlock()
    }

    /// Why no Docker credentials were found for a normalised registry key, when a helper was
    /// asked and gave nothing.
    func problem(forKey key: String) -> String? {
        let hub = CredentialStore.dockerHubAliases.contains(key)
        let server = hub ? "https://index.docker.io/v1/" : key
        lock.lock(); defer { lock.unlock() }
        return problems[server]
    }
}
