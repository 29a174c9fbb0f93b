import Foundation
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// A full filesystem, for real: UDOCKER_DIR on a small tmpfs (mounted by the test process, which
/// needs root for it); the command runs as the test user and must end with one line saying how
/// much room is left and what to do (issue 15.7).
@Suite(
    "E2E errors a user can act on: full disk, inodes, user namespaces", e2eEnabled,
    .enabled(if: geteuid() == 0, "mounting a small tmpfs needs root in the test process"))
struct ActionableErrorTests {
    /// `<sandbox>/small`: a tmpfs with `options`, owned by the test user; unmounted by `done`.
    func smallFilesystem(_ box: E2ESandbox, _ options: String) async throws -> String {
        let dir = "\(box.path)/small"
        try box.makeUserDirectory(dir)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/mount")
        p.arguments = ["-t", "tmpfs", "-o", options, "tmpfs", dir]
        try p.run(); p.waitUntilExit()
        try #require(p.terminationStatus == 0, "mount -t tmpfs -o \(options) failed")
        try box.chownToUser(dir)
        chmod(dir, 0o755)
        return dir
    }

    func unmount(_ dir: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/umount")
        p.arguments = ["-l", dir]
        try? p.run(); p.waitUntilExit()
    }

    @Test("no space left during a pull: one line with the room left and what to free")
    func noSpace() async throws {
        let box = try sandbox()
        let small = try await smallFilesystem(box, "size=4m")
        defer { unmount(small) }
        let r = try await box.udocker(["pull", box.env.debian], environment: ["UDOCKER_DIR": "\(small)/ud"])
        expectOneLineError(r, status: 1, mentioning: ["no space left", "MiB free on the filesystem of \(small)/ud"])
        #expect(r.stderr.contains("udocker rmi --prune") || r.stderr.contains("UDOCKER_DIR"), "\(r)")
    }

    @Test("no inodes left while creating a container: named as such")
    func noInodes() async throws {
        let box = try sandbox()
        let small = try await smallFilesystem(box, "size=64m,nr_inodes=48")
        defer { unmount(small) }
        let env = ["UDOCKER_DIR": "\(small)/ud"]
        try await box.pull(box.env.busybox, environment: env)
        let r = try await box.udocker(["create", box.env.busybox], environment: env)
        expectOneLineError(r, status: 1, mentioning: ["inodes free now on the filesystem of \(small)/ud", "ran out of inodes"])
    }

    @Test(
        "login on a full filesystem: one line, and the keystore keeps the earlier logins",
        .enabled(
            if: ProcessInfo.processInfo.environment["UDOCKER_E2E_HTPASSWD_REGISTRY"]?.isEmpty == false,
            "needs the htpasswd registry fixture (UDOCKER_E2E_HTPASSWD_REGISTRY)"))
    func loginOnFullDisk() async throws {
        let box = try sandbox()
        let registry = try #require(box.env.htpasswdRegistry)
        let small = try await smallFilesystem(box, "size=64k")
        defer { unmount(small) }
        let keystore = "\(small)/keystore"
        let earlier = #"{"https://quay.io": {"auth": "c29tZW9uZTprZXB0", "email": ""}}"#
        try box.writeUserFile(keystore, earlier, mode: 0o600)
        _ = try await box.shell("dd if=/dev/zero of='\(small)/fill' bs=4k 2>/dev/null; true")
        let r = try await box.udocker(
            ["login", "--username=\(box.env.htpasswdUser)", "--password-stdin", "--registry=\(registry)"],
            environment: ["UDOCKER_KEYSTORE": keystore], stdin: box.env.htpasswdPassword + "\n")
        expectOneLineError(r, status: 1, mentioning: ["no space left"])
        #expect(box.readFile(keystore) == earlier, "the keystore must not be blanked before its replacement")
    }

    @Test(
        "N1 chosen for a container, user namespaces disabled: exit 2, the sysctl to ask for and P1",
        .enabled(if: BlockingLauncher.compiler != nil, "needs a C compiler for the namespace launcher"))
    func userNamespacesDisabled() async throws {
        let box = try sandbox()
        let launcher = try BlockingLauncher.build(in: box)
        _ = try await box.pullAndCreate(box.env.busybox, name: "bb")
        expectSuccess(try await box.udocker(["setup", "--execmode=N1", "bb"]))
        let r = try await launcher.run(box, ["--userns0"], ["run", "--nobanner", "bb", "true"])
        expectOneLineError(
            r, status: 2,
            mentioning: [
                "user.max_user_namespaces=0", "udocker setup --execmode=P1 bb",
                "ask the administrators for: sysctl -w user.max_user_namespaces=",
            ])
    }
}
