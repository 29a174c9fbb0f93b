import Foundation
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Issue 23 §3 and §4: what a udocker user trips on, side by side with udocker 1.3.17, and the
/// leftovers of killed commands.
@Suite("E2E what a udocker user trips on", e2eEnabled)
struct TripTests {
    // MARK: --env-file

    @Test("--env-file: 'K = V' is K=V and 'export K=V' is skipped with a warning, as udocker reads them; the run goes on")
    func envFileForms() async throws {
        let box = try sandbox()
        _ = try await box.pullAndCreate(box.env.busybox, name: "bb")
        let file = "\(box.scratch)/forms.env"
        try box.writeUserFile(file, "SPACED = two words \nexport EXPORTED=1\nPLAIN=yes\r\n# comment\n\n1BAD=x\n")
        let r = try await box.run(
            ["--env-file=\(file)", "bb", "sh", "-c", "echo \"[$SPACED]|${EXPORTED-unset}|[$PLAIN]|$(env | grep -c '^export')\""])
        expectSuccess(r)
        #expect(r.stdout == "[two words]|unset|[yes]|0\n", "\(r)")
        #expect(r.stderr.contains("Warning: --env-file \(file) line 2: ignoring export EXPORTED=1"), "\(r)")
        #expect(r.stderr.contains("line 6: ignoring 1BAD=x"), "\(r)")
    }

    // MARK: run --pull

    @Test("run --pull=never of a missing image exits 2 as udocker; a bare --pull means the default (missing)")
    func pullNeverAndBarePull() async throws {
        let box = try sandbox()
        let never = try await box.udocker(["run", "--pull=never", box.env.busybox, "true"])
        expectOneLineError(never, status: 2, mentioning: ["not found"])
        #expect(try await box.imageLines().isEmpty)
        // udocker 1.3.17 exits 2 too (its engine finds no container), without a message.
        let py = try await box.python(["run", "--pull=never", "library/nosuch:1", "true"])
        #expect(py.status == 2, "\(py)")
        // A bare --pull before the image: pulled and run (udocker took the image for the policy).
        let bare = try await box.udocker(["run", "--pull", "--nobanner", box.env.busybox, "echo", "ran"])
        expectSuccess(bare)
        #expect(bare.stdout == "ran\n", "\(bare)")
        let spaced = try await box.udocker(["run", "--pull", "never", "--nobanner", box.env.busybox, "echo", "again"])
        expectSuccess(spaced)
        #expect(spaced.stdout == "again\n", "\(spaced)")
    }

    // MARK: search REGISTRY/expr

    @Test("search REGISTRY/expr searches that registry, as udocker's help shows")
    func searchRegistryPrefix() async throws {
        let box = try sandbox()
        let r = try await box.udocker(["search", "-a", "\(box.env.registry)/busy"])
        expectSuccess(r)
        let rows = r.stdoutLines.dropFirst()
        #expect(rows.count == 1 && rows.first?.hasPrefix("library/busybox ") == true, "\(r)")
        let scheme = try await box.udocker(["search", "-a", "http://\(box.env.registry)/debian"])
        expectSuccess(scheme)
        #expect(scheme.stdoutLines.dropFirst().contains { $0.hasPrefix("library/debian ") }, "\(scheme)")
    }

    // MARK: proxies and TLS hints

    /// A port nobody listens on (bound, then closed).
    static func deadPort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    @Test("a dead --httpproxy is reported as the proxy being unreachable, not the registry")
    func deadProxy() async throws {
        let box = try sandbox()
        let port = try Self.deadPort()
        let r = try await box.udocker(["pull", "--httpproxy=http://127.0.0.1:\(port)", box.env.busybox])
        expectOneLineError(r, mentioning: ["proxy unreachable", "127.0.0.1:\(port)", "connection refused"])
        #expect(!r.stderr.contains("registry unreachable"), "\(r)")
    }

    @Test("SOCKS proxies: socks5h:// carries a pull; socks4 and socks5 with a password are refused in one line (no crash)")
    func socksProxies() async throws {
        let box = try sandbox()
        let socks = try await SOCKS5Server.start(in: box.scratch)
        defer { socks.stop() }
        for scheme in ["socks5h", "socks5"] {
            _ = try await box.udocker(["rmi", box.env.busybox])
            let r = try await box.udocker(["pull", "--httpproxy=\(scheme)://127.0.0.1:\(socks.port)", box.env.busybox])
            expectSuccess(r)
        }
        #expect(socks.connections() >= 2, "the pulls did not go through the SOCKS proxy")
        for (proxy, words) in [
            ("socks4://127.0.0.1:\(socks.port)", ["SOCKS4 is not supported"]),
            ("socks4a://127.0.0.1:\(socks.port)", ["SOCKS4 is not supported"]),
            ("socks5://bob:secret@127.0.0.1:\(socks.port)", ["user and password"]),
        ] {
            let r = try await box.udocker(["pull", "--httpproxy=\(proxy)", box.env.busybox])
            expectOneLineError(r, mentioning: words)
            #expect(!r.stderr.contains("secret"), "\(r)")
        }
    }

    @Test(
        "a TLS registry named host:port on loopback (an SSH tunnel) answers plain http with 400: the error says to use https://",
        .enabled(if: RegistryParityTests.tlsRegistry != nil, "needs the TLS registry fixture (UDOCKER_E2E_TLS_REGISTRY)"))
    func tlsRegistryAskedInPlainHTTP() async throws {
        let box = try sandbox()
        let reg = try #require(RegistryParityTests.tlsRegistry)
        let r = try await box.udocker(["pull", "\(reg)/library/busybox"])
        expectOneLineError(r, mentioning: ["speaks https", "--registry=https://\(reg)"])
    }

    // MARK: a group's shared repository

    @Test(
        "another user's repository: refused; with trusted_repository_owners, read-only commands work with a warning, writes are refused",
        .enabled(if: geteuid() == 0, "needs root to hand the repository to another user"))
    func trustedForeignRepository() async throws {
        let box = try sandbox()
        let shared = "\(box.path)/shared"
        expectSuccess(try await box.udocker(["mkrepo", shared]))
        expectSuccess(try await box.udocker(["--repo=\(shared)", "pull", box.env.busybox]))
        for argv in [["/bin/chown", "-R", "65534:65534", shared], ["/bin/chmod", "-R", "go+rX,go-w", shared]] {
            let p = try Process.run(URL(fileURLWithPath: argv[0]), arguments: Array(argv.dropFirst()))
            p.waitUntilExit()
            try #require(p.terminationStatus == 0, "\(argv)")
        }
        let refused = try await box.udocker(["--repo=\(shared)", "images"])
        expectOneLineError(refused, mentioning: ["owned by uid 65534"])
        let trust = ["UDOCKER_TRUSTED_REPOSITORY_OWNERS": "nobody"]
        let images = try await box.udocker(["--repo=\(shared)", "images"], environment: trust)
        expectSuccess(images)
        #expect(images.stdout.contains("library/busybox"), "\(images)")
        #expect(images.stderr.contains("Warning: reading repository \(shared) of nobody"), "\(images)")
        expectSuccess(try await box.udocker(["--repo=\(shared)", "ps"], environment: trust))
        for write in [["rmi", box.env.busybox], ["create", box.env.busybox], ["verify", "--all", "--repair"]] {
            let r = try await box.udocker(["--repo=\(shared)"] + write, environment: trust)
            expectOneLineError(r, mentioning: ["trusted for reading only"])
        }
        // A repository that others may write stays refused, trusted owner or not.
        chmod(shared, 0o777)
        expectOneLineError(try await box.udocker(["--repo=\(shared)", "images"], environment: trust), mentioning: ["owned by uid 65534"])
    }

    // MARK: leftovers of killed commands

    /// Starts `args` stopped-and-stepped by a small stepper process (python3): the command runs
    /// only in 2 ms slices (SIGCONT, sleep, SIGSTOP), and between slices, while it is stopped,
    /// the stepper checks whether any file matching `glob` is larger than `minSize` bytes; then
    /// SIGKILL (no handler runs). A separate process, so the slices do not depend on when this
    /// test's task is scheduled (under the whole suite that was seconds late, and a fast release
    /// binary finished unseen). False when the command ended before the condition held.
    static func killWhen(_ box: E2ESandbox, _ args: [String], glob: String, minSize: Int) async throws -> Bool {
        let p = try RawRun.start(box, args)
        let pid = p.processIdentifier
        kill(pid, SIGSTOP)
        let stepper = Process()
        stepper.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        stepper.arguments = ["-c", Self.stepperScript, String(pid), glob, String(minSize)]
        try stepper.run()
        stepper.waitUntilExit()
        let hit = stepper.terminationStatus == 0
        kill(pid, SIGKILL)
        await RawRun.wait(p)
        return hit
    }

    static let stepperScript = """
        import glob, os, signal, sys, time
        pid, pattern, minimum = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
        def alive():
            try:
                with open(f"/proc/{pid}/stat") as f: return f.read().split(") ")[1][0] not in "ZX"
            except OSError: return False
        deadline = time.monotonic() + 120
        while alive() and time.monotonic() < deadline:
            for path in glob.glob(pattern, include_hidden=True):
                try:
                    if os.lstat(path).st_size > minimum or (minimum < 0 and os.path.exists(path)):
                        os.kill(pid, signal.SIGKILL); sys.exit(0)
                except OSError: pass
            os.kill(pid, signal.SIGCONT); time.sleep(0.002); os.kill(pid, signal.SIGSTOP); time.sleep(0.001)
        sys.exit(1)
        """

    static func size(_ path: String) -> Int64 {
        var st = stat()
        return stat(path, &st) == 0 ? Int64(st.st_size) : -1
    }

    @Test("a killed export -o FILE leaves .FILE.part-PID; the next export to FILE removes it")
    func killedExportLeftover() async throws {
        let box = try sandbox()
        let id = try await box.pullAndCreate(box.env.debian)
        let out = "\(box.scratch)/c.tar"
        let parts = { box.listDirectory(box.scratch).filter { $0.hasPrefix(".c.tar.part-") } }
        // Stepped (killWhen): a fast release build finished the export before a polling test could kill it.
        let hit = try await Self.killWhen(box, ["export", "-o", out, id], glob: "\(box.scratch)/.c.tar.part-*", minSize: 1 << 20)
        try #require(hit, "the export ended before it could be killed mid-way")
        #expect(parts().count == 1, "\(parts())")
        let again = try await box.udocker(["export", "-o", out, id])
        expectSuccess(again)
        #expect(parts().isEmpty, "the leftover is still there: \(parts())")
        #expect(again.stderr.contains("left by an interrupted export or save"), "\(again)")
        // A live export's part file is never taken: two exports at once both succeed.
        async let a = box.udocker(["export", "-o", "\(box.scratch)/d.tar", id])
        async let b = box.udocker(["export", "-o", "\(box.scratch)/d.tar", id])
        for r in try await [a, b] { expectSuccess(r) }
    }

    @Test(
        "a killed import --clone leaves a staging entry in containers/; the next import --clone, rmi --prune or verify --all --repair removes it"
    )
    func killedImportCloneLeftover() async throws {
        let box = try sandbox()
        let id = try await box.pullAndCreate(box.env.debian)
        let tarball = "\(box.scratch)/clone.tar"
        expectSuccess(try await box.udocker(["export", "--clone", "-o", tarball, id]))
        var known: Set<String> = [id]  // containers ps lists
        let entries = { box.listDirectory(box.containersDirectory).filter { !known.contains($0) } }
        for cleaner in [["import", "--clone", tarball], ["rmi", "--prune"], ["verify", "--all", "--repair"]] {
            let hit = try await Self.killWhen(
                box, ["import", "--clone", tarball], glob: "\(box.containersDirectory)/*/.extracted/ROOT", minSize: -1)
            try #require(hit, "the import ended before it could be killed mid-way")
            let left = entries()
            #expect(!left.isEmpty, "nothing left by the killed import")
            #expect(try await box.psLines().count == (cleaner.first == "import" ? 1 : 2), "ps lists the leftover")
            let r = try await box.udocker(cleaner)
            expectNoCrash(r)
            let after = entries().filter { left.contains($0) }
            #expect(after.isEmpty, "\(cleaner) left \(after):\n\(r)")
            for line in try await box.psLines() { known.insert(String(line.prefix(36))) }
        }
    }
}

/// A SOCKS5 proxy without authentication (CONNECT only), a small Python program on loopback.
final class SOCKS5Server: @unchecked Sendable {
    let port: Int
    let process: Process
    let log: String

    init(port: Int, process: Process, log: String) { self.port = port; self.process = process; self.log = log }

    static func start(in directory: String) async throws -> SOCKS5Server {
        let portFile = "\(directory)/socks.port", log = "\(directory)/socks.log"
        let (p, port) = try await PythonService.start(
            script, arguments: [portFile, log], portFile: portFile, quietErrors: true, what: "the SOCKS5 server")
        return SOCKS5Server(port: port, process: p, log: log)
    }

    func connections() -> Int {
        ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n").count
    }

    func stop() {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    static let script = #"""
        import os, socket, struct, sys, threading
        srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind(("127.0.0.1", 0)); srv.listen(64)
        with open(sys.argv[1] + ".tmp", "w") as f: f.write(str(srv.getsockname()[1]))
        os.rename(sys.argv[1] + ".tmp", sys.argv[1])
        lock = threading.Lock()
        def recvn(s, n):
            b = b""
            while len(b) < n:
                d = s.recv(n - len(b))
                if not d: raise OSError("closed")
                b += d
            return b
        def pipe(a, b):
            try:
                while True:
                    d = a.recv(65536)
                    if not d: break
                    b.sendall(d)
            except OSError: pass
            finally:
                for s in (a, b):
                    try: s.shutdown(socket.SHUT_RDWR)
                    except OSError: pass
        def handle(c):
            try:
                ver, n = recvn(c, 2)
                methods = recvn(c, n)
                if ver != 5 or 0 not in methods:
                    c.sendall(b"\x05\xff"); c.close(); return
                c.sendall(b"\x05\x00")
                ver, cmd, _, atyp = recvn(c, 4)
                if atyp == 1: host = socket.inet_ntoa(recvn(c, 4))
                elif atyp == 3: host = recvn(c, recvn(c, 1)[0]).decode()
                elif atyp == 4: host = socket.inet_ntop(socket.AF_INET6, recvn(c, 16))
                port = struct.unpack(">H", recvn(c, 2))[0]
                with lock:
                    with open(sys.argv[2], "a") as f: f.write("CONNECT %s:%d\n" % (host, port))
                u = socket.create_connection((host, port))
                c.sendall(b"\x05\x00\x00\x01" + socket.inet_aton("127.0.0.1") + struct.pack(">H", 0))
                threading.Thread(target=pipe, args=(c, u), daemon=True).start()
                pipe(u, c)
            except OSError:
                c.close()
        while True:
            c, _ = srv.accept()
            threading.Thread(target=handle, args=(c,), daemon=True).start()
        """#
}
