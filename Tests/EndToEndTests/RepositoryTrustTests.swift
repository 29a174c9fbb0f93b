import Foundation
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Corpus cases 44 and 35 through the CLI, as the unprivileged user: a repository others can
/// write is refused, in the forms users type (`--repo=`, `UDOCKER_DIR`); a setuid engine tool is
/// refused before it runs.
@Suite("E2E repository and tool trust", e2eEnabled)
struct RepositoryTrustTests {
    @Test("--repo / UDOCKER_DIR writable by others without the sticky bit: one line, exit 1; sticky or private: accepted")
    func unsafeRepositoryIsRefused() async throws {
        let box = try sandbox()
        let dir = "\(box.scratch)/shared-repo"
        expectSuccess(try await box.udocker(["mkrepo", dir]))
        for (mode, refused) in [("0777", true), ("0757", true), ("1777", false), ("0755", false)] {
            _ = try await box.shell("chmod \(mode) '\(dir)'")
            for (args, env) in [(["--repo=\(dir)", "images"], [String: String]()), (["images"], ["UDOCKER_DIR": dir])] {
                let r = try await box.udocker(args, environment: env)
                if refused {
                    #expect(r.status == 1, "\(mode) \(args): \(r)")
                    #expect(r.significantStderrLines.count == 1 && r.stderr.contains("is writable by others"), "\(mode): \(r)")
                    #expect(r.stdout.isEmpty)
                } else {
                    expectSuccess(r)
                }
            }
        }
    }

    @Test(
        "a setuid proot named by UDOCKER_USE_PROOT_EXECUTABLE is refused before it runs",
        .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/proot"), "needs /usr/bin/proot"))
    func setuidToolIsRefused() async throws {
        let box = try sandbox()
        let id = try await box.pullAndCreate(box.env.busybox)
        try await box.use(.p1, for: id)
        let copy = "\(box.scratch)/proot"
        expectSuccess(try await box.shell("cp /usr/bin/proot '\(copy)' && chmod 0755 '\(copy)'"))
        expectSuccess(try await box.run([id, "true"], environment: ["UDOCKER_USE_PROOT_EXECUTABLE": copy]))
        expectSuccess(try await box.shell("chmod 4755 '\(copy)'"))
        let r = try await box.run([id, "true"], environment: ["UDOCKER_USE_PROOT_EXECUTABLE": copy])
        #expect(r.status == 1, "\(r)")
        #expect(r.errorLines.count == 1 && r.stderr.contains("\(copy) is setuid/setgid"), "\(r)")
    }
}
