import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The end-to-end fixture environment, written by `scripts/test-fixtures.sh` to
/// `$UDOCKER_E2E_WORK/env` and exported by `make test`.
///
/// * `UDOCKER_E2E` unset (or not `1`): the E2E suites are disabled (`isEnabled == false`).
/// * `UDOCKER_E2E=1`: every variable below must be set and point at something that exists;
///   `load()` throws otherwise, so the tests FAIL instead of silently passing.
public struct E2EEnvironment: Sendable {
    /// Work dir of the fixtures (`/tmp/udocker-e2e`).
    public let work: String
    /// Dir owned by the test user where each test gets its own sandbox.
    public let home: String
    /// Unprivileged user the commands run as when the tests run as root.
    public let user: String
    /// World-readable copy of our `udocker` binary.
    public let binary: String
    /// The Python udocker 1.3.17 (venv) used for compatibility tests.
    public let pythonUdocker: String
    /// `127.0.0.1:<port>` (5000 when it was free): plain HTTP registry, no auth. Every port comes
    /// from the env file: `scripts/test-fixtures.sh` picks free ones when the defaults are taken.
    public let registry: String
    /// `127.0.0.1:<port>` (5001): token-auth registry.
    public let tokenRegistry: String
    /// `127.0.0.1:<port>` (5003): Basic auth from an htpasswd file, same images as `registry`;
    /// nil with fixtures older than this variable (the tests that need it are skipped).
    public let htpasswdRegistry: String?
    public let htpasswdUser: String
    public let htpasswdPassword: String
    public let tokenUser: String
    public let tokenPassword: String
    /// Tag of the Debian image (`bookworm`).
    public let debianTag: String
    /// Digest of the layer blob that the registry serves corrupted (`sha256:<hex>`).
    public let corruptDigest: String
    /// Debian's libfakechroot.so (Python udocker F1 mode).
    public let fakechrootSO: String
    /// Debian's patchelf.
    public let patchelf: String

    public static var isEnabled: Bool { ProcessInfo.processInfo.environment["UDOCKER_E2E"] == "1" }

    /// Keep the per-test sandboxes (for debugging) when `UDOCKER_E2E_KEEP=1`.
    public static var keepSandboxes: Bool { ProcessInfo.processInfo.environment["UDOCKER_E2E_KEEP"] == "1" }

    public struct Missing: Error, CustomStringConvertible {
        public let description: String
    }

    public static func load(_ environment: [String: String] = ProcessInfo.processInfo.environment) throws -> E2EEnvironment {
        var problems: [String] = []
        func value(_ name: String) -> String {
            guard let v = environment[name], !v.isEmpty else {
                problems.append("\(name) is not set"); return ""
            }
            return v
        }
        let work = value("UDOCKER_E2E_WORK")
        let home = environment["UDOCKER_E2E_HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? (work.isEmpty ? "" : "\(work)/home")
        let env = E2EEnvironment(
            work: work, home: home,
            user: value("UDOCKER_E2E_USER"),
            binary: value("UDOCKER_E2E_BIN"),
            pythonUdocker: value("UDOCKER_E2E_PYUDOCKER"),
            registry: value("UDOCKER_E2E_REGISTRY"),
            tokenRegistry: value("UDOCKER_E2E_TOKEN_REGISTRY"),
            htpasswdRegistry: environment["UDOCKER_E2E_HTPASSWD_REGISTRY"].flatMap { $0.isEmpty ? nil : $0 },
            htpasswdUser: environment["UDOCKER_E2E_HTPASSWD_USER"] ?? "bob",
            htpasswdPassword: environment["UDOCKER_E2E_HTPASSWD_PASSWORD"] ?? "hunter2",
            tokenUser: environment["UDOCKER_E2E_TOKEN_USER"] ?? "alice",
            tokenPassword: environment["UDOCKER_E2E_TOKEN_PASSWORD"] ?? "secret",
            debianTag: environment["UDOCKER_E2E_DEBIAN_TAG"] ?? "bookworm",
            corruptDigest: value("UDOCKER_E2E_CORRUPT_DIGEST"),
            fakechrootSO: environment["UDOCKER_E2E_FAKECHROOT_SO"] ?? "/usr/lib/x86_64-linux-gnu/fakechroot/libfakechroot.so",
            patchelf: environment["UDOCKER_E2E_PATCHELF"] ?? "/usr/bin/patchelf")
        if environment["UDOCKER_E2E"] != "1" { problems.append("UDOCKER_E2E is not 1") }
        func executable(_ path: String, _ what: String) {
            if !path.isEmpty && access(path, X_OK) != 0 { problems.append("\(what) \(path) is not an executable file") }
        }
        func directory(_ path: String, _ what: String) {
            var isDir: ObjCBool = false
            if !path.isEmpty && !(FileManager.default.fileExists(atPath: path, isDirectory: &isDir) && isDir.boolValue) {
                problems.append("\(what) \(path) is not a directory")
            }
        }
        executable(env.binary, "UDOCKER_E2E_BIN")
        executable(env.pythonUdocker, "UDOCKER_E2E_PYUDOCKER")
        directory(env.work, "UDOCKER_E2E_WORK")
        directory(env.home, "UDOCKER_E2E_HOME")
        if !env.user.isEmpty && geteuid() == 0 && getpwnam(env.user) == nil {
            problems.append("UDOCKER_E2E_USER \(env.user) does not exist")
        }
        if !env.corruptDigest.isEmpty && !env.corruptDigest.hasPrefix("sha256:") {
            problems.append("UDOCKER_E2E_CORRUPT_DIGEST \(env.corruptDigest) is not sha256:<hex>")
        }
        if !problems.isEmpty {
            throw Missing(
                description: "E2E environment incomplete (run `make test` or `make fixtures` and source "
                    + "$UDOCKER_E2E_WORK/env): " + problems.joined(separator: "; "))
        }
        return env
    }

    /// `<registry>/library/<name>:<tag>`
    public func image(_ name: String, tag: String = "latest", registry: String? = nil) -> String {
        "\(registry ?? self.registry)/library/\(name):\(tag)"
    }

    public var busybox: String { image("busybox") }
    public var debian: String { image("debian", tag: debianTag) }
    public var whiteout: String { image("whiteout") }
    public var multi: String { image("multi") }
    public var corrupt: String { image("corrupt") }
    public var tokenBusybox: String { image("busybox", registry: tokenRegistry) }
}
