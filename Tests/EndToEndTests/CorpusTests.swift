import Foundation
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Issue 10's crash, concurrency and disk-full suites (corpus cases 18, 28–30, 34), through the
/// CLI as the unprivileged user. The map of all cases is in docs/trust-boundaries.md.
@Suite("E2E corpus: crash, concurrency, disk full", e2eEnabled)
struct CorpusTests {
    /// SIGKILL iterations per command; `UDOCKER_E2E_KILL_ITERATIONS=100` for the issue's full run.
    static let killIterations = Int(ProcessInfo.processInfo.environment["UDOCKER_E2E_KILL_ITERATIONS"] ?? "") ?? 2
    static let canMount = geteuid() == 0 && FileManager.default.isExecutableFile(atPath: "/bin/mount")

    /// A sentinel directory beside the repository: its listing, sizes, mtimes and contents.
    static func sentinel(_ box: E2ESandbox) async throws -> () async throws -> String {
        let dir = "\(box.home)/outside"
        try box.makeUserDirectory(dir)
        try box.writeUserFile("\(dir)/file", "precious\n")
        let stamp = { try await box.shell("cd '\(dir)' && ls -la --time-style=+%s . && cat file").stdout }
        return stamp
    }

    /// `verify --all` exits 0 and reports nothing.
    static func expectVerified(_ box: E2ESandbox, _ when: String, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let v = try await box.udocker(["verify", "--all"])
        #expect(v.status == 0 && !v.stderr.contains("Error:"), "verify --all after \(when):\n\(v)", sourceLocation: sourceLocation)
    }

    /// Starts `args` as the user, kills it with SIGKILL after `delayMs`, waits for it.
    static func killed(_ box: E2ESandbox, _ args: [String], afterMs delayMs: Int, environment: [String: String] = [:]) async throws {
        let quoted = args.map { "'\($0)'" }.joined(separator: " ")
        _ = try await box.shell(
            "'\(box.env.binary)' \(quoted) >/dev/null 2>&1 & pid=$!; sleep \(Double(delayMs) / 1000); kill -9 $pid 2>/dev/null; wait $pid",
            environment: environment)
    }

    @Test("SIGKILL at random points of pull, create, rm, setup, import and load: verify --all is clean after the next command")
    func killLoops() async throws {
        let box = try sandbox()
        let outside = try await Self.sentinel(box)
        let before = try await outside()
        let image = box.env.debian
        var survived: [String: Int] = [:]
        for i in 0..<Self.killIterations {
            // pull: a 60 MB layer, killed while downloading (or before / after); the next pull resumes.
            _ = try await box.udocker(["rmi", image])
            _ = try await box.udocker(["rmi", "--prune", "-f"])
            try await Self.killed(box, ["pull", image], afterMs: Int.random(in: 50...1500))
            try await box.pull(image)
            try await Self.expectVerified(box, "a killed pull (iteration \(i))")
            // create: killed while extracting; the next create cleans the staging.
            try await Self.killed(box, ["create", "--name=k\(i)", image], afterMs: Int.random(in: 50...2500))
            let id = try await box.create(image)
            try await Self.expectVerified(box, "a killed create (iteration \(i))")
            // setup: F1 conversion killed half-way; setup again completes it.
            let f1 = ["UDOCKER_FAKECHROOT_SO": box.env.fakechrootSO, "UDOCKER_USE_PATCHELF_EXECUTABLE": box.env.patchelf]
            try await Self.killed(box, ["setup", "--execmode=F1", id], afterMs: Int.random(in: 10...800), environment: f1)
            expectSuccess(try await box.udocker(["setup", "--execmode=F1", id], environment: f1))
            try await Self.expectVerified(box, "a killed setup (iteration \(i))")
            // rm: killed while deleting; the next command taking the lock finishes the removal.
            try await Self.killed(box, ["rm", id], afterMs: Int.random(in: 10...600))
            _ = try await box.udocker(["rm", id])
            for c in try await box.psLines() { _ = try await box.udocker(["rm", String(c.prefix(36))]) }
            _ = try await box.udocker(["rmname", "k\(i)"])
            try await Self.expectVerified(box, "a killed rm (iteration \(i))")
            // save + load, export + import: killed half-way, then done again.
            let saved = "\(box.scratch)/saved-\(i).tar"
            expectSuccess(try await box.udocker(["save", "-o", saved, image]))
            try await Self.killed(box, ["load", "-i", saved], afterMs: Int.random(in: 50...1500))
            expectSuccess(try await box.udocker(["load", "-i", saved]))
            try await Self.expectVerified(box, "a killed load (iteration \(i))")
            try await Self.killed(box, ["import", saved, "imp/k:\(i)"], afterMs: Int.random(in: 50...1500))
            _ = try await box.udocker(["rmi", "imp/k:\(i)"])  // the killed import may have finished
            expectSuccess(try await box.udocker(["import", saved, "imp/k:\(i)"]))
            try await Self.expectVerified(box, "a killed import (iteration \(i))")
            _ = try await box.shell("rm -f '\(saved)'")
            for c in ["pull", "create", "setup", "rm", "load", "import"] { survived[c, default: 0] += 1 }
        }
        #expect(try await outside() == before, "a file outside the repository changed")
        // The repository still works.
        let id = try await box.create(image)
        expectSuccess(try await box.run([id, "cat", "/etc/debian_version"]))
        print(
            "kill loop: \(survived.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")) iterations survived")
    }

    @Test("32 concurrent pulls of one image into one repository: all succeed, every blob fetched once, verify --all clean")
    func thirtyTwoConcurrentPulls() async throws {
        let box = try sandbox()
        let image = box.env.debian
        let n = 32
        let results = try await withThrowingTaskGroup(of: CommandResult.self) { group in
            for _ in 0..<n { group.addTask { try await box.udocker(["-D", "pull", image], timeout: .seconds(600)) } }
            var all: [CommandResult] = []
            for try await r in group { all.append(r) }
            return all
        }
        for r in results { expectSuccess(r) }
        let (config, layers) = try box.manifestDigests(image)
        func fetches(_ digest: String) -> Int {
            results.map { $0.stderr.components(separatedBy: "\n").filter { $0.contains("GET ") && $0.contains("/blobs/\(digest)") }.count }
                .reduce(0, +)
        }
        for digest in layers { #expect(fetches(digest) == 1, "layer \(digest) fetched \(fetches(digest)) times") }
        // The config (a few hundred bytes) is read by every pull while it resolves the image, to
        // check the platform before anything is stored: once per pull, never more.
        #expect(fetches(config) <= n, "config fetched \(fetches(config)) times")
        try await Self.expectVerified(box, "32 concurrent pulls")
        let id = try await box.create(image)
        expectSuccess(try await box.run([id, "cat", "/etc/debian_version"]))
    }

    @Test("concurrent create, run, rm and rmi on one repository: each either succeeds or fails in one line; verify --all clean")
    func concurrentContainerCommands() async throws {
        let box = try sandbox()
        let image = box.env.busybox
        try await box.pull(image)
        let ids = try await withThrowingTaskGroup(of: String.self) { group in
            for _ in 0..<6 { group.addTask { try await box.create(image) } }
            var all: [String] = []
            for try await id in group { all.append(id) }
            return all
        }
        #expect(Set(ids).count == 6)
        // (kind, result): 0 = run, 1 = rm, 2 = rmi, 3 = create.
        let results = try await withThrowingTaskGroup(of: (Int, CommandResult).self) { group in
            for id in ids.prefix(3) { group.addTask { (0, try await box.run(["--nobanner", id, "/bin/sh", "-c", "echo ok"])) } }
            for id in ids.suffix(3) { group.addTask { (1, try await box.udocker(["rm", id])) } }
            group.addTask { (2, try await box.udocker(["rmi", image])) }
            for _ in 0..<2 { group.addTask { (3, try await box.udocker(["create", image])) } }
            var all: [(Int, CommandResult)] = []
            for try await r in group { all.append(r) }
            return all
        }
        for (_, r) in results where !r.succeeded { expectOneLineError(r, status: nil) }
        for (kind, r) in results where kind == 0 { #expect(r.succeeded && r.stdout == "ok\n", "\(r)") }
        for (kind, r) in results where kind == 1 { expectSuccess(r) }
        #expect(try await box.psLines().count == 3 + results.filter { $0.0 == 3 && $0.1.succeeded }.count)
        try await Self.expectVerified(box, "concurrent create/run/rm/rmi")
    }

    @Test(
        "disk full (a 12 MB tmpfs as UDOCKER_DIR): pull and create fail in one line naming the lack of space, leave nothing partial, and the repository works once space is freed",
        .enabled(if: canMount, "needs root to mount a small tmpfs for the user"))
    func diskFull() async throws {
        let box = try sandbox()
        let dir = "\(box.scratch)/small"
        try box.makeUserDirectory(dir)
        let (uid, gid) = try UserCommand.ids(of: box.env.user)
        let mount = Process()
        mount.executableURL = URL(fileURLWithPath: "/bin/mount")
        mount.arguments = ["-t", "tmpfs", "-o", "size=12m,uid=\(uid),gid=\(gid),mode=0700", "tmpfs", dir]
        try mount.run(); mount.waitUntilExit()
        try #require(mount.terminationStatus == 0, "mount tmpfs failed")
        defer {
            let u = Process(); u.executableURL = URL(fileURLWithPath: "/bin/umount"); u.arguments = ["-l", dir]
            try? u.run(); u.waitUntilExit()
        }
        let env = ["UDOCKER_DIR": "\(dir)/repo"]
        expectSuccess(try await box.udocker(["pull", box.env.busybox], environment: env))
        // A 60 MB image does not fit.
        let full = try await box.udocker(["pull", box.env.debian], environment: env)
        expectOneLineError(full, status: nil, mentioning: ["no space left"])
        #expect(full.status != 0)
        let layers = box.listDirectory("\(dir)/repo/layers")
        #expect(!layers.contains { $0.hasSuffix(".partial") }, "partial left: \(layers)")
        let images = try await box.udocker(["images"], environment: env)
        #expect(!images.stdout.contains("debian"), "\(images)")
        // Fill the disk but 256 KB: the busybox tree (about 2 MB) does not fit.
        _ = try await box.shell(
            "dd if=/dev/zero of='\(dir)/filler' bs=64k 2>/dev/null; rm -f '\(dir)/filler'; avail=$(df -k --output=avail '\(dir)' | tail -1); dd if=/dev/zero of='\(dir)/filler' bs=1k count=$((avail - 256)) 2>/dev/null"
        )
        let create = try await box.udocker(["create", "--name=bb", box.env.busybox], environment: env)
        expectOneLineError(create, status: nil, mentioning: ["no space left"])
        #expect(try await box.udocker(["ps"], environment: env).stdoutLines.count == 1, "a container of a failed create is listed")
        #expect(!box.listDirectory("\(dir)/repo/containers").contains { $0.hasPrefix(".") }, "staging left behind")
        _ = try await box.shell("rm -f '\(dir)/filler'")
        let again = try await box.udocker(["create", "--name=bb", box.env.busybox], environment: env)
        expectSuccess(again)
        expectSuccess(try await box.udocker(["run", "--nobanner", "bb", "/bin/echo", "ok"], environment: env))
        let v = try await box.udocker(["verify", "--all"], environment: env)
        #expect(v.status == 0, "\(v)")
    }

    static let tlsDirectory = "\(ProcessInfo.processInfo.environment["UDOCKER_E2E_WORK"] ?? "/tmp/udocker-e2e")/tls"
    static let canServeTLS =
        FileManager.default.isExecutableFile(atPath: "/usr/bin/python3")
        && FileManager.default.isReadableFile(atPath: "\(tlsDirectory)/server-key.pem")

    @Test(
        "import URL: an https download redirected to plain http is refused in one line; https to https is followed",
        .enabled(if: canServeTLS, "needs python3 and the fixtures' TLS key (readable by the test, i.e. root)"))
    func importURLRefusesHTTPSDowngrade() async throws {
        let box = try sandbox()
        _ = try await box.shell(
            "mkdir -p '\(box.scratch)/rootfs/etc' && echo hi > '\(box.scratch)/rootfs/etc/hello' && tar -C '\(box.scratch)/rootfs' -cf '\(box.scratch)/rootfs.tar' ."
        )
        let portFile = "\(box.scratch)/https.port"
        // /down → http://127.0.0.1:<port>/rootfs.tar (a downgrade), /same → https://…/rootfs.tar.
        let script = """
            import http.server, ssl, sys, os
            root, cert, key, portfile = sys.argv[1:5]
            class H(http.server.BaseHTTPRequestHandler):
                def do_GET(self):
                    port = self.server.server_address[1]
                    if self.path in ("/down", "/same"):
                        scheme = "http" if self.path == "/down" else "https"
                        self.send_response(302); self.send_header("Location", f"{scheme}://127.0.0.1:{port}/rootfs.tar")
                        self.send_header("Content-Length", "0"); self.end_headers(); return
                    data = open(os.path.join(root, "rootfs.tar"), "rb").read()
                    self.send_response(200); self.send_header("Content-Length", str(len(data))); self.end_headers(); self.wfile.write(data)
                def log_message(self, *a): pass
            srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); ctx.load_cert_chain(cert, key)
            srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
            open(portfile + ".tmp", "w").write(str(srv.server_address[1])); os.rename(portfile + ".tmp", portfile)
            srv.serve_forever()
            """
        let server = Process()
        server.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        server.arguments = ["-c", script, box.scratch, "\(Self.tlsDirectory)/server.pem", "\(Self.tlsDirectory)/server-key.pem", portFile]
        try server.run()
        defer { kill(server.processIdentifier, SIGKILL); server.waitUntilExit() }  // SIGTERM is blocked in children of the test process
        var port: Int?
        for _ in 0..<200 where port == nil {
            port = (try? String(contentsOfFile: portFile, encoding: .utf8)).flatMap { Int($0) }
            if port == nil { try await Task.sleep(nanoseconds: 50_000_000) }
        }
        let p = try #require(port, "the https server did not start")
        let env = ["SSL_CERT_FILE": "\(Self.tlsDirectory)/ca.pem"]
        let down = try await box.udocker(["import", "https://127.0.0.1:\(p)/down", "url/down:1"], environment: env)
        expectOneLineError(down, status: nil, mentioning: ["refusing redirect from https to plain http"])
        #expect(!(try await box.udocker(["images"])).stdout.contains("url/down"))
        #expect(!box.listDirectory(box.layersDirectory).contains { $0.hasPrefix(".download-") }, "download file left behind")
        expectSuccess(try await box.udocker(["import", "https://127.0.0.1:\(p)/same", "url/same:1"], environment: env))
        let id = try await box.create("url/same:1")
        #expect(box.readFile("\(box.containersDirectory)/\(id)/ROOT/etc/hello") == "hi\n")
    }

    @Test("verify --all finds a corrupt blob of the right size; --repair removes it and its tag; a pull heals the image")
    func verifyAllAndRepair() async throws {
        let box = try sandbox()
        let image = box.env.busybox
        let id = try await box.pullAndCreate(image, name: "bb")
        try await Self.expectVerified(box, "a pull and a create")
        let (_, layers) = try box.manifestDigests(image)
        let victim = "\(box.layersDirectory)/\(try #require(layers.first))"
        let size = try #require(try FileManager.default.attributesOfItem(atPath: victim)[.size] as? Int)
        try Data(repeating: 0x41, count: size).write(to: URL(fileURLWithPath: victim))
        try box.chownToUser(victim)
        let found = try await box.udocker(["verify", "--all"])
        #expect(found.status == 1, "\(found)")
        #expect(found.stderr.contains("Error: blob \(layers[0]) is corrupt"), "\(found)")
        #expect(box.exists(victim), "verify without --repair changed the repository")
        expectOneLineError(try await box.udocker(["verify", "--repair"]), status: nil, mentioning: ["--repair needs --all"])
        let repaired = try await box.udocker(["verify", "--all", "--repair"])
        #expect(repaired.status == 0 && repaired.stderr.contains("repaired: blob \(layers[0]) is corrupt"), "\(repaired)")
        #expect(!box.exists(victim))
        #expect(try await box.imageLines().isEmpty, "the incomplete tag was kept")
        expectSuccess(try await box.run(["--nobanner", id, "/bin/echo", "kept"]))  // the container is untouched
        try await box.pull(image)
        try await Self.expectVerified(box, "the healing pull")
    }
}
