import Foundation
import Testing
import TestSupport

/// Command-line parity with the Python udocker 1.3.17 (issue 14): the forms users type in scripts.
@Suite("E2E CLI parity", e2eEnabled)
struct ParityTests {
    func busybox(_ name: String = #function) async throws -> (E2ESandbox, String) {
        let box = try sandbox(name)
        let id = try await box.pullAndCreate(box.env.busybox, name: "bb")
        return (box, id)
    }

    /// Adds an Entrypoint to the container's metadata (what an image with one would have given).
    func setEntrypoint(_ box: E2ESandbox, _ id: String, _ entrypoint: [String]) throws {
        let path = "\(box.containerDirectory(id))/container.json"
        let data = try #require(box.readFile(path)).data(using: .utf8)!
        var json = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        var config = json["config"] as? [String: Any] ?? [:]
        config["Entrypoint"] = entrypoint
        json["config"] = config
        let out = try JSONSerialization.data(withJSONObject: json)
        try box.writeUserFile(path, String(decoding: out, as: UTF8.self))
    }

    @Test("run CONTAINER tool --help runs tool --help; only options before the container are udocker's")
    func helpAfterContainerIsTheCommands() async throws {
        let (box, _) = try await busybox()
        let r = try await box.run(["bb", "sh", "-c", "echo \"$@\"", "x", "--help", "-h", "--opt=", "-e=1"])
        expectSuccess(r)
        #expect(r.stdout == "--help -h --opt= -e=1\n", "arguments after the container must reach the command untouched:\n\(r)")
        #expect(!r.stdout.contains("OVERVIEW"), "\(r)")
        let echo = try await box.run(["--nobanner", "bb", "echo", "--help"])
        expectSuccess(echo)
        #expect(echo.stdout == "--help\n", "\(echo)")
        // before the container it is ours
        for args in [["--help", "bb", "echo", "x"], ["-v", "/tmp:/mnt", "--help", "bb"]] {
            let help = try await box.run(args)
            expectSuccess(help)
            #expect(help.stdout.contains("--entrypoint"), "run's own help expected:\n\(help)")
            #expect(!help.stdout.contains("STARTING"), "\(help)")
        }
    }

    @Test("--entrypoint=\"\" and --entrypoint \"\" drop the image entrypoint; --entrypoint=X replaces it")
    func emptyEntrypoint() async throws {
        let (box, id) = try await busybox()
        try setEntrypoint(box, id, ["echo", "from-entrypoint"])
        let withImage = try await box.run(["--nobanner", "bb", "arg"])
        expectSuccess(withImage)
        #expect(withImage.stdout == "from-entrypoint arg\n", "the metadata entrypoint should run first:\n\(withImage)")
        for form in [["--entrypoint="], ["--entrypoint", ""]] {
            let r = try await box.run(["--nobanner"] + form + ["bb", "echo", "no-entrypoint"])
            expectSuccess(r)
            #expect(r.stdout == "no-entrypoint\n", "\(form) must drop the entrypoint, not eat the container name:\n\(r)")
        }
        let replaced = try await box.run(["--nobanner", "--entrypoint=sh", "bb", "-c", "echo a-b"])
        expectSuccess(replaced)
        #expect(replaced.stdout == "a-b\n", "\(replaced)")
    }

    @Test("valued options accept an empty value as --opt=\"\" and --opt \"\" (udocker: empty = unset)")
    func emptyValues() async throws {
        let (box, _) = try await busybox()
        for form in [
            ["-w="], ["--workdir="], ["--workdir", ""], ["--user="], ["-u", ""], ["--kernel="], ["--cpuset-cpus="],
            ["--name="], ["--name", ""], ["--pull="], ["--storage="], ["--platform", ""], ["-e="],
        ] {
            let r = try await box.run(["--nobanner"] + form + ["bb", "pwd"])
            expectSuccess(r)
            #expect(r.stdout == "/tmp\n", "\(form): the image WorkingDir applies:\n\(r)")
        }
        let setup = try await box.udocker(["setup", "--execmode=", "bb"])
        expectSuccess(setup)
        #expect(setup.stdoutLines.first?.hasPrefix("execmode: ") == true, "\(setup)")
        let create = try await box.udocker(["create", "--name=", box.env.busybox])
        expectSuccess(create)
        #expect(try await box.psLines().count == 2, "create --name= makes an unnamed container")
    }
}

/// `udocker install [--force] [--purge]` with a udockertools tarball built here from Debian's tools.
@Suite("E2E install", e2eEnabled)
struct InstallTests {
    /// A tarball in udockertools layout (`udocker_dir/{bin,lib,doc}`) holding the host's proot,
    /// runc and libfakechroot; `extra` adds shell commands run inside the staging directory.
    func tarball(_ box: E2ESandbox, name: String = "tools.tar.gz", version: String = "1.2.11", extra: String = "") async throws -> String {
        let out = "\(box.scratch)/\(name)"
        let stage = "\(box.scratch)/stage-\(name)"
        let r = try await box.shell(
            """
            set -e; mkdir -p \(stage)/udocker_dir/bin \(stage)/udocker_dir/lib \(stage)/udocker_dir/doc/LICENSE; cd \(stage)
            cp /usr/bin/proot udocker_dir/bin/proot-x86_64; ln -s proot-x86_64 udocker_dir/bin/proot-x86_64-4_8_0
            cp /usr/bin/runc udocker_dir/bin/runc-x86_64
            cp \(box.env.fakechrootSO) udocker_dir/lib/libfakechroot-Debian-12-x86_64.so
            ln -s libfakechroot-Debian-12-x86_64.so udocker_dir/lib/libfakechroot-x86_64.so
            echo \(version) > udocker_dir/lib/VERSION; echo proot licence > udocker_dir/doc/LICENSE/COPYING.proot
            echo '- hosts: all' > ansible_install.yaml
            \(extra)
            tar --owner=root --group=root -czf \(out) udocker_dir ansible_install.yaml
            """)
        try requireSuccess(r)
        return out
    }

    func sha256(_ box: E2ESandbox, _ path: String) throws -> String { try #require(box.sha256(path)) }

    @Test("install with tarball set empty succeeds and lists where each engine tool was found")
    func reportOnly() async throws {
        let box = try sandbox()
        // `tarball =` opts out of the download from udocker's URLs (ToolsDownloadTests), as in udocker.
        try box.makeUserDirectory(box.udockerDir)
        try box.writeUserFile("\(box.udockerDir)/udocker.conf", "[DEFAULT]\ntarball =\n")
        let r = try await box.udocker(["install"])
        expectSuccess(r)
        for tool in ["proot", "runc/crun", "fakechroot", "patchelf", "apptainer/singularity"] {
            #expect(r.stdoutLines.contains { $0.hasPrefix("\(tool): ") }, "no line for \(tool):\n\(r)")
        }
        #expect(r.stdoutLines.contains("proot: /usr/bin/proot (P1 P2 R2 R3)"), "Debian's proot is on PATH:\n\(r)")
        #expect(r.stdoutLines.contains { $0.hasPrefix("fakechroot: \(box.env.fakechrootSO)") }, "\(r)")
        #expect(r.stdoutLines.contains("apptainer/singularity: not found (S1)"), "\(r)")
        #expect(r.stderr.contains("no udockertools tarball configured"), "\(r)")
        expectSuccess(try await box.udocker(["install", "--force", "--purge"]))
    }

    @Test("UDOCKER_TARBALL with its SHA-256: tools land in bin/ and lib/ and P1 runs the installed proot")
    func installTarball() async throws {
        let box = try sandbox()
        let tar = try await tarball(box)
        let env = ["UDOCKER_TARBALL": tar, "UDOCKER_TARBALL_SHA256": try sha256(box, tar), "UDOCKER_USE_PROOT_EXECUTABLE": "UDOCKER"]
        let r = try await box.udocker(["install"], environment: env)
        expectSuccess(r)
        let bin = "\(box.udockerDir)/bin", lib = "\(box.udockerDir)/lib"
        #expect(box.sha256("\(bin)/proot-x86_64") == box.sha256("/usr/bin/proot"))
        #expect(access("\(bin)/proot-x86_64", X_OK) == 0)
        #expect(box.isSymlink("\(bin)/proot-x86_64-4_8_0") && box.isSymlink("\(lib)/libfakechroot-x86_64.so"))
        #expect(box.readFile("\(lib)/VERSION") == "1.2.11\n")
        #expect(box.readFile("\(box.udockerDir)/doc/COPYING.proot") == "proot licence\n")
        #expect(!box.exists("\(box.udockerDir)/ansible_install.yaml") && !box.exists("\(bin)/ansible_install.yaml"))
        #expect(r.stdoutLines.contains("proot: \(bin)/proot-x86_64-4_8_0 (P1 P2 R2 R3)"), "\(r)")
        #expect(r.stdoutLines.contains { $0.hasPrefix("fakechroot: \(lib)/libfakechroot-") }, "\(r)")
        // P1 with the bin-dir proot only (UDOCKER_USE_PROOT_EXECUTABLE=UDOCKER: PATH is not searched)
        _ = try await box.pullAndCreate(box.env.busybox, name: "bb")
        expectSuccess(try await box.udocker(["setup", "--execmode=P1", "bb"], environment: env))
        let run = try await box.udocker(["run", "--nobanner", "bb", "echo", "via-installed-proot"], environment: env)
        expectSuccess(run)
        #expect(run.stdout == "via-installed-proot\n", "\(run)")
        // current version: nothing to do; --force reinstalls; --purge empties bin/ first
        let again = try await box.udocker(["install"], environment: env)
        expectSuccess(again)
        #expect(again.stderr.contains("already installed"), "\(again)")
        try box.writeUserFile("\(bin)/stale-tool", "x")
        expectSuccess(try await box.udocker(["install", "--force"], environment: env))
        #expect(box.exists("\(bin)/stale-tool"))
        expectSuccess(try await box.udocker(["install", "--purge", "--force"], environment: env))
        #expect(!box.exists("\(bin)/stale-tool") && box.exists("\(bin)/proot-x86_64"))
    }

    @Test("a wrong SHA-256, an old VERSION, an escaping symlink or a missing file: one error, nothing installed")
    func refusedTarballs() async throws {
        let box = try sandbox()
        let good = try await tarball(box)
        let old = try await tarball(box, name: "old.tar.gz", version: "1.1.9")
        let evil = try await tarball(box, name: "evil.tar.gz", extra: "ln -s ../../../../etc/passwd udocker_dir/bin/zz-evil")
        let cases: [([String: String], [String])] = [
            (["UDOCKER_TARBALL": good, "UDOCKER_TARBALL_SHA256": String(repeating: "0", count: 64)], ["SHA-256"]),
            (["UDOCKER_TARBALL": old], ["1.1.9"]),
            (["UDOCKER_TARBALL": evil], ["symlink"]),
            (["UDOCKER_TARBALL": "\(box.scratch)/missing.tar.gz"], ["missing.tar.gz"]),
        ]
        for (env, words) in cases {
            let r = try await box.udocker(["install"], environment: env)
            expectOneLineError(r, mentioning: words)
            #expect(box.listDirectory("\(box.udockerDir)/bin").isEmpty, "nothing may be installed:\n\(r)")
            #expect(!box.exists("\(box.udockerDir)/lib/VERSION"))
        }
        // --force takes the older version
        expectSuccess(try await box.udocker(["install", "--force"], environment: ["UDOCKER_TARBALL": old]))
        #expect(box.readFile("\(box.udockerDir)/lib/VERSION") == "1.1.9\n")
    }
}

/// Script-visible output and exit codes as udocker 1.3.17 gives them (issue 14, item 9).
@Suite("E2E script-visible parity", e2eEnabled)
struct ScriptParityTests {
    @Test("ps: a blank NAMES column for an unnamed container, udocker's list for a named one")
    func psBlankNames() async throws {
        let box = try sandbox()
        let unnamed = try await box.pullAndCreate(box.env.busybox)
        let named = try await box.create(box.env.busybox, name: "bb")
        let lines = try await box.psLines()
        let u = try #require(lines.first { $0.hasPrefix(unnamed) }, "\(lines)")
        let n = try #require(lines.first { $0.hasPrefix(named) }, "\(lines)")
        #expect(!u.contains("[]"), "unnamed containers show a blank, not []: \(u)")
        #expect(u.split(separator: " ", omittingEmptySubsequences: true).count == 4, "id P M IMAGE: \(u)")
        #expect(n.contains("['bb']"), "\(n)")
    }

    @Test(
        "pre-run errors exit 2 as in udocker: bad -v source, bad -w, command not found, unknown --hostauth user",
        arguments: [
            ["-v", "/nonexistent-e2e:/x", "bb", "true"], ["-w", "/nonexistent-e2e", "bb", "true"],
            ["bb", "/no/such/program"], ["--hostauth", "-u", "nosuchuser-e2e", "bb", "true"],
        ])
    func preRunErrorsExit2(args: [String]) async throws {
        let box = try sandbox()
        _ = try await box.pullAndCreate(box.env.busybox, name: "bb")
        let r = try await box.run(args)
        expectOneLineError(r, status: 2)
    }

    @Test("showconf lists every key the Python udocker lists, with proxy credentials masked")
    func showconfKeys() async throws {
        let box = try sandbox()
        try box.makeUserDirectory(box.udockerDir)
        try box.writeUserFile("\(box.udockerDir)/udocker.conf", "[DEFAULT]\nhttp_proxy = socks5h://bob:hunter2@proxy.example:1080\n")
        let ours = try await box.udocker(["showconf"])
        expectSuccess(ours)
        let python = try await box.python(["showconf"])
        expectSuccess(python)
        func keys(_ r: CommandResult) -> Set<String> {
            Set(
                r.stdoutLines.compactMap { line -> String? in
                    guard let sep = line.range(of: " =") else { return nil }
                    return String(line[..<sep.lowerBound])
                })
        }
        let pythonKeys = keys(python), ourKeys = keys(ours)
        #expect(pythonKeys.count >= 60, "\(python)")
        #expect(pythonKeys.subtracting(ourKeys).isEmpty, "keys missing from our showconf: \(pythonKeys.subtracting(ourKeys).sorted())")
        for k in ["valid_host_env", "invalid_host_env", "nvi_lib_list", "runc_capabilities", "docker_registries"] {
            #expect(ourKeys.contains(k), "\(k) missing:\n\(ours)")
        }
        #expect(ours.stdoutLines.contains("http_proxy = socks5h://***@proxy.example:1080"), "\(ours)")
        #expect(!ours.stdout.contains("hunter2"), "\(ours)")
    }
}

/// `run --location=DIR`: a bare root tree outside the repository (udocker's option).
@Suite("E2E run --location", e2eEnabled)
struct LocationTests {
    @Test("run --location=DIR LABEL CMD runs CMD in the tree, in N1 and P1, writing nothing next to it")
    func location() async throws {
        let box = try sandbox()
        let id = try await box.pullAndCreate(box.env.busybox)
        let tree = "\(box.scratch)/trees/rootfs"
        try requireSuccess(
            try await box.shell("mkdir -p \(box.scratch)/trees && cp -a \(box.containerRoot(id)) \(tree) && echo in-tree > \(tree)/marker"))
        expectSuccess(try await box.udocker(["rm", id]))
        for mode in ["N1", "P1"] {
            let env = ["UDOCKER_DEFAULT_EXECUTION_MODE": mode]
            let r = try await box.run(
                ["--nobanner", "--location=\(tree)", "tree", "sh", "-c", "cat /marker; echo $container_execmode"], environment: env)
            expectSuccess(r)
            #expect(r.stdoutLines.first == "in-tree", "\(mode):\n\(r)")
            let w = try await box.run(["--location", tree, "-w", "/etc", "tree", "pwd"], environment: env)
            expectSuccess(w)
            #expect(w.stdoutLines.last == "/etc", "\(mode):\n\(w)")
        }
        #expect(box.listDirectory("\(box.scratch)/trees") == ["rootfs"], "nothing may be written next to the tree")
        #expect(!box.listDirectory(box.tmp).contains { $0.hasPrefix("udocker-location") }, "per-run directory left in TMPDIR")
        #expect(try await box.psLines().isEmpty, "--location must not create a container")
        expectOneLineError(try await box.run(["--location=\(box.scratch)/nonexistent", "x", "true"]), mentioning: ["location"])
    }
}

/// Help and messages (issue 14, item 11).
@Suite("E2E help and messages", e2eEnabled)
struct MessageParityTests {
    @Test("every command the general help lists has a working --help, and help names every execution mode")
    func everyCommandsHelp() async throws {
        let box = try sandbox()
        let general = try await box.udocker(["help"])
        expectSuccess(general)
        let lines = general.stdoutLines
        let start = try #require(lines.firstIndex(of: "Commands:"), "\(general)")
        let end = try #require(lines.firstIndex { $0.hasPrefix("Execution modes") }, "\(general)")
        let commands = Set(
            lines[(start + 1)..<end].compactMap { line -> String? in
                guard line.hasPrefix("  "), let w = line.split(separator: " ").first, w.first?.isLetter == true else { return nil }
                return String(w)
            })
        #expect(
            commands.isSuperset(of: ["pull", "images", "create", "run", "ps", "rm", "rmi", "setup", "install", "export", "import"]),
            "\(commands)")
        for name in commands.sorted() {
            for args in [[name, "--help"], ["help", name], ["--help", name]] {
                let r = try await box.udocker(args)
                expectSuccess(r)
                #expect(r.stdout.contains("USAGE: \(name)"), "\(args):\n\(r)")
            }
        }
        let setup = try await box.udocker(["setup", "--help"])
        for mode in ["N1", "P1", "P2", "F1", "F2", "F3", "F4", "R1", "R2", "R3", "S1"] {
            #expect(lines.contains { $0.hasPrefix("  \(mode)  ") }, "general help lacks \(mode):\n\(general)")
            #expect(setup.stdout.contains("\(mode)  "), "setup --help lacks \(mode):\n\(setup)")
        }
        let bad = try await box.udocker(["setup", "--execmode=X9", "nosuch"])
        expectOneLineError(bad)
    }

    @Test("refusing a protected container or image says nothing about deleting it")
    func noDeletingBeforeRefusal() async throws {
        let box = try sandbox()
        _ = try await box.pullAndCreate(box.env.busybox, name: "bb")
        expectSuccess(try await box.udocker(["protect", "bb"]))
        expectSuccess(try await box.udocker(["protect", box.env.busybox]))
        for args in [["rm", "bb"], ["rmi", box.env.busybox]] {
            let r = try await box.udocker(args)
            expectOneLineError(r, mentioning: ["protected"])
            #expect(!r.stderr.lowercased().contains("delet"), "\(r)")
        }
        #expect(try await box.psLines().count == 1)
    }

    @Test("a missing --env-file is named, exit 2")
    func missingEnvFile() async throws {
        let box = try sandbox()
        _ = try await box.pullAndCreate(box.env.busybox, name: "bb")
        let r = try await box.run(["--env-file=\(box.scratch)/no-such.env", "bb", "true"])
        expectOneLineError(r, status: 2, mentioning: ["--env-file", "\(box.scratch)/no-such.env"])
    }

    @Test("skipped device nodes on create are reported with -D only")
    func deviceNodesDebugOnly() async throws {
        let box = try sandbox()
        try await box.pull(box.env.debian)
        let quiet = try await box.udocker(["create", box.env.debian])
        expectSuccess(quiet)
        #expect(!quiet.stderr.contains("device node"), "\(quiet)")
        let debug = try await box.udocker(["-D", "create", box.env.debian])
        expectSuccess(debug)
        #expect(debug.stderr.contains("device node"), "-D shows them (the Debian image has device nodes):\n\(debug)")
    }

    @Test("export -o FILE replaces an existing FILE once the new archive is complete, never writing through a symlink")
    func exportOverwrites() async throws {
        let box = try sandbox()
        let id = try await box.pullAndCreate(box.env.busybox, name: "bb")
        let out = "\(box.scratch)/bb.tar"
        expectSuccess(try await box.udocker(["export", "-o", out, "bb"]))
        try box.writeUserFile("\(box.containerRoot(id))/added-later", "x")
        expectSuccess(try await box.udocker(["export", "-o", out, "bb"]))
        let list = try await box.shell("tar -tf \(out)")
        expectSuccess(list)
        #expect(list.stdoutLines.contains { $0.hasSuffix("added-later") }, "the second export must replace the first")
        try box.writeUserFile("\(box.scratch)/precious", "keep")
        try requireSuccess(try await box.shell("ln -s precious \(box.scratch)/link.tar"))
        expectSuccess(try await box.udocker(["export", "-o", "\(box.scratch)/link.tar", "bb"]))
        #expect(box.readFile("\(box.scratch)/precious") == "keep")
        #expect(!box.isSymlink("\(box.scratch)/link.tar"))
        #expect(!box.listDirectory(box.scratch).contains { $0.hasPrefix(".") }, "temporary left: \(box.listDirectory(box.scratch))")
    }
}

/// README's Quick start, run line by line as written (the one `udocker` on PATH is ours).
@Suite("E2E README quick start", e2eEnabled)
struct QuickStartTests {
    static func quickStartLines() throws -> [String] {
        let readme = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../README.md").standardized
        let text = try String(contentsOf: readme, encoding: .utf8)
        let section = try #require(text.range(of: "## Quick start")).upperBound
        let open = try #require(text.range(of: "```sh\n", range: section..<text.endIndex)).upperBound
        let close = try #require(text.range(of: "```", range: open..<text.endIndex)).lowerBound
        return text[open..<close].split(separator: "\n").map(String.init).filter { !$0.isEmpty }
    }

    @Test("every line of the Quick start succeeds, in order, against the test registry")
    func quickStart() async throws {
        let box = try sandbox()
        let lines = try Self.quickStartLines()
        #expect(lines.count >= 8, "\(lines)")
        try box.makeUserDirectory("\(box.scratch)/bin")
        try requireSuccess(try await box.shell("ln -s \(box.env.binary) \(box.scratch)/bin/udocker"))
        // README uses Docker Hub names; the test registry stands in for Docker Hub (no network here),
        // the way a site registry does for users: through UDOCKER_REGISTRY, the lines unchanged.
        let env = ["PATH": "\(box.scratch)/bin:\(E2ESandbox.defaultPath)", "UDOCKER_REGISTRY": "http://\(box.env.registry)"]
        for line in lines {
            #expect(!line.contains("127.0.0.1"), "the Quick start names Docker Hub images: \(line)")
            let r = try await box.shell(line, environment: env)
            expectSuccess(r)
            if line.contains("exit 42") { #expect(r.stdoutLines.suffix(3) == ["1", "/mnt", "42"], "\(r)") }
            if line.contains("--rm") { #expect(try await box.psLines().count == 1, "--rm must delete only its own container") }
        }
        #expect(try await box.psLines().isEmpty, "the Quick start ends with rm deb")
    }
}

/// `run` options beyond udocker and the ones an engine cannot honour (issue 14, section 2).
@Suite("E2E run options per engine", e2eEnabled)
struct RunOptionParityTests {
    func setupData(_ box: E2ESandbox) throws -> String {
        let data = "\(box.scratch)/data"
        try box.makeUserDirectory(data)
        try box.writeUserFile("\(data)/f", "host-file\n")
        return data
    }

    @Test("-v host:cont:ro is read-only inside, the rest of the container stays writable", arguments: ["N1", "R1"])
    func readOnlyVolume(mode: String) async throws {
        let box = try sandbox("ro-\(mode)")
        _ = try await box.pullAndCreate(box.env.busybox, name: "bb")
        if mode != "N1" { try requireSuccess(try await box.udocker(["setup", "--execmode=\(mode)", "bb"])) }
        let data = try setupData(box)
        let ro = try await box.run([
            "--nobanner", "-v", "\(data):/data:ro", "bb", "sh", "-c",
            "cat /data/f; touch /data/new && echo wrote-ro; touch /tmp/ok && echo root-writable",
        ])
        expectNoCrash(ro)
        #expect(ro.stdoutLines.contains("host-file"), "\(ro)")
        #expect(!ro.stdoutLines.contains("wrote-ro"), "a :ro volume must refuse writes:\n\(ro)")
        #expect(ro.stdoutLines.contains("root-writable"), "only the volume is read-only:\n\(ro)")
        #expect(!box.exists("\(data)/new"))
        let rw = try await box.run(["--nobanner", "-v", "\(data):/data:rw", "bb", "sh", "-c", "touch /data/new && echo wrote"])
        expectSuccess(rw)
        #expect(rw.stdoutLines == ["wrote"], "\(rw)")
        #expect(box.exists("\(data)/new"))
    }

    @Test("-v host:cont:ro in P1 and F1: one clear error, exit 2", arguments: ["P1", "F1"])
    func readOnlyRefused(mode: String) async throws {
        let box = try sandbox("ro-refused-\(mode)")
        _ = try await box.pullAndCreate(box.env.busybox, name: "bb")
        try requireSuccess(
            try await box.udocker(
                ["setup", "--execmode=\(mode)", "bb"],
                environment: ["UDOCKER_FAKECHROOT_SO": box.env.fakechrootSO]))
        let data = try setupData(box)
        let r = try await box.run(["-v", "\(data):/data:ro", "bb", "true"], environment: ["UDOCKER_FAKECHROOT_SO": box.env.fakechrootSO])
        expectOneLineError(r, status: 2, mentioning: ["read-only", mode])
        expectOneLineError(try await box.run(["-v", "\(data):/data:rx", "bb", "true"]), status: 2, mentioning: [":ro"])
    }

    @Test("-t, -i and -a are accepted; options no engine honours here warn instead of being dropped silently")
    func acceptedAndWarned() async throws {
        let box = try sandbox()
        _ = try await box.pullAndCreate(box.env.busybox, name: "bb")
        let ti = try await box.run(["-t", "-i", "--nobanner", "bb", "echo", "ok"])
        expectSuccess(ti)
        #expect(ti.stdout == "ok\n", "\(ti)")
        for (args, word) in [(["--kernel=6.0.0"], "--kernel"), (["--dns=192.0.2.1"], "--dns"), (["-p", "8080:80"], "port")] {
            let r = try await box.run(args + ["--nobanner", "bb", "true"])
            expectSuccess(r)
            #expect(r.stderrLines.contains { $0.hasPrefix("Warning:") && $0.contains(word) }, "\(args) needs a warning:\n\(r)")
        }
    }
}

/// `--cpuset-cpus` is one hook of the common plan: every engine's command runs with that affinity.
@Suite("E2E run --cpuset-cpus", e2eEnabled)
struct CPUSetTests {
    @Test("--cpuset-cpus=0 pins the command to CPU 0", arguments: ["N1", "P1", "F1", "R1"])
    func cpuset(mode: String) async throws {
        let box = try sandbox("cpuset-\(mode)")
        // F needs a dynamic loader in the image: the static busybox has none
        _ = try await box.pullAndCreate(mode == "F1" ? box.env.debian : box.env.busybox, name: "bb")
        let env = ["UDOCKER_FAKECHROOT_SO": box.env.fakechrootSO]
        if mode != "N1" { try requireSuccess(try await box.udocker(["setup", "--execmode=\(mode)", "bb"], environment: env)) }
        let r = try await box.run(
            ["--nobanner", "--cpuset-cpus=0", "bb", "grep", "Cpus_allowed_list", "/proc/self/status"], environment: env)
        expectSuccess(r)
        #expect(r.stdout.split(whereSeparator: \.isWhitespace).last == "0", "\(mode):\n\(r)")
        #expect(!r.stderr.contains("Warning"), "\(r)")
    }
}
