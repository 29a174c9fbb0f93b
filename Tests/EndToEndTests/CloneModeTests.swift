import Foundation
import Testing
import TestSupport

/// Issue 14 items 4 and 5: clones of F-mode containers run in the same mode with no manual step;
/// F2–F4 on an image of static executables behave like F1.
@Suite("E2E clones of Fakechroot containers", e2eEnabled)
struct CloneModeTests {
    static func ok(
        _ box: E2ESandbox, _ container: String, _ mode: String, _ how: String,
        sourceLocation: SourceLocation = #_sourceLocation
    ) async throws {
        let r = try await box.run([
            "--nobanner", container, "sh", "-c", "ls /usr/lib/os-release >/dev/null && cat /etc/debian_version && echo $0",
        ])
        expectSuccess(r, sourceLocation: sourceLocation)
        #expect(r.stdout.hasPrefix("12") && r.stdoutLines.last == "sh", "\(mode) \(how): \(r)", sourceLocation: sourceLocation)
        let shown = try await box.udocker(["setup", container])
        #expect(shown.stdoutLines.contains("execmode: \(mode)"), "\(mode) \(how): \(shown)", sourceLocation: sourceLocation)
    }

    @Test("clone, export --clone + import --clone of an F container run in the same mode", arguments: ["F1", "F2", "F3", "F4"])
    func clones(_ mode: String) async throws {
        let box = try sandbox("clone-\(mode)")
        _ = try await box.pullAndCreate(box.env.debian, name: "deb")
        try requireSuccess(try await box.udocker(["setup", "--execmode=\(mode)", "deb"]))
        try await Self.ok(box, "deb", mode, "original")

        let cloned = try await box.udocker(["clone", "--name=copy", "deb"])
        try requireSuccess(cloned)
        #expect(!cloned.stderr.contains("setup"), "no manual step is asked for: \(cloned)")
        try await Self.ok(box, "copy", mode, "clone")

        let tar = "\(box.scratch)/deb.tar"
        try box.makeUserDirectory(box.scratch)
        try requireSuccess(try await box.udocker(["export", "--clone", "-o", tar, "deb"]))
        try requireSuccess(try await box.udocker(["rm", "deb"]))  // the original's path is gone
        try requireSuccess(try await box.udocker(["import", "--clone", "--name=imported", tar]))
        try await Self.ok(box, "imported", mode, "import --clone")

        // And back to the default engine: the clone's conversion is undone cleanly.
        try requireSuccess(try await box.udocker(["setup", "--execmode=N1", "imported"]))
        let back = try await box.run(["--nobanner", "imported", "cat", "/etc/debian_version"])
        expectSuccess(back)
        #expect(back.stdout.hasPrefix("12"), "\(mode) → N1: \(back)")
    }

    @Test("a Python udocker F1 clone imported by ours runs in F1")
    func pythonF1Clone() async throws {
        let box = try sandbox()
        _ = try await box.pullAndCreate(box.env.debian, name: "deb")
        let f1 = ["UDOCKER_FAKECHROOT_SO": box.env.fakechrootSO, "UDOCKER_USE_PATCHELF_EXECUTABLE": box.env.patchelf]
        try requireSuccess(try await box.python(["setup", "--execmode=F1", "deb"], environment: f1))
        try box.makeUserDirectory(box.scratch)
        let tar = "\(box.scratch)/py.tar"
        try requireSuccess(try await box.python(["export", "--clone", "-o", tar, "deb"], environment: f1))
        try requireSuccess(try await box.udocker(["rm", "deb"]))
        try requireSuccess(try await box.udocker(["import", "--clone", "--name=fromPython", tar]))
        try await Self.ok(box, "fromPython", "F1", "Python clone")
    }

    @Test("F2-F4 on a static busybox image: nothing to patch, setup and run work", arguments: ["F2", "F3", "F4"])
    func staticImage(_ mode: String) async throws {
        let box = try sandbox("static-\(mode)")
        _ = try await box.pullAndCreate(box.env.busybox, name: "bb")
        let set = try await box.udocker(["setup", "--execmode=\(mode)", "bb"])
        try requireSuccess(set)
        #expect(set.stderr.contains("nothing to patch"), "\(set)")
        let r = try await box.run(["--nobanner", "bb", "/bin/echo", "static-ok"])
        expectSuccess(r)
        #expect(r.stdout == "static-ok\n", "\(mode): \(r)")
    }
}
