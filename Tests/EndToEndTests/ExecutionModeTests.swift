import Foundation
import Testing
import TestSupport

/// `udocker setup --execmode=X c && udocker run c …` through the CLI, as the unprivileged user, for
/// every engine that runs on this machine (S1 needs a host Apptainer: the engine tests cover it
/// with a stand-in). The Debian image is dynamically linked, which the F modes need.
@Suite("E2E execution modes", e2eEnabled)
struct ExecutionModeTests {
    static let modes = ["P2", "F1", "F2", "F3", "F4", "R1", "R2", "R3"]

    @Test("every mode runs the Debian image: exit code, env, workdir, volume, stdin", arguments: modes)
    func mode(_ mode: String) async throws {
        let box = try sandbox("mode-\(mode)")
        let id = try await box.pullAndCreate(box.env.debian, name: "deb")
        let set = try await box.udocker(["setup", "--execmode=\(mode)", "deb"])
        try requireSuccess(set)
        let shown = try await box.udocker(["setup", "deb"])
        #expect(shown.stdoutLines.contains("execmode: \(mode)"), "\(shown)")

        try box.makeUserDirectory("\(box.scratch)/vol")
        try box.writeUserFile("\(box.scratch)/vol/in", "from-host\n")
        // F modes map volumes only at the same path (Debian's libfakechroot has no DIR_MAP).
        let volume = "\(box.scratch)/vol"
        let r = try await box.run(
            [
                "--nobanner", "-e", "X=1", "-v", volume, "-w", volume, "deb",
                "sh", "-c", "echo $X; pwd; cat in; read line; echo got:$line; echo out > out; exit 42",
            ],
            stdin: "piped\n")
        expectNoCrash(r)
        #expect(r.status == 42, "\(mode): \(r)")
        #expect(r.stdout == "1\n\(volume)\nfrom-host\ngot:piped\n", "\(mode): \(r)")
        #expect(box.readFile("\(volume)/out") == "out\n", "\(mode): the container writes into the volume")

        // A dynamically linked program and a shebang script from the image itself.
        let ls = try await box.run(["--nobanner", "deb", "/bin/ls", "/etc/debian_version"])
        expectSuccess(ls)
        #expect(ls.stdout == "/etc/debian_version\n", "\(mode): \(ls)")
        let script = try await box.run([
            "--nobanner", "deb", "sh", "-c", "printf '#!/bin/sh\\necho script:$1\\n' > /tmp/s.sh; chmod +x /tmp/s.sh; /tmp/s.sh ok",
        ])
        expectSuccess(script)
        #expect(script.stdout == "script:ok\n", "\(mode): \(script)")

        // Back to the default engine: the container still works (F conversions are undone).
        try requireSuccess(try await box.udocker(["setup", "--execmode=N1", "deb"]))
        let back = try await box.run(["--nobanner", "deb", "cat", "/etc/debian_version"])
        expectSuccess(back)
        #expect(back.stdout.hasPrefix("12"), "\(mode) → N1: \(back)")
        expectSuccess(try await box.udocker(["rm", id]))
    }
}
