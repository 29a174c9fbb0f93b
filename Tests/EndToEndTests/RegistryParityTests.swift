import Foundation
import Testing
import TestSupport

/// Registry behaviour as clusters meet it: filesystems without locks, corrupt blobs in the
/// repository, short names under a configured registry, search, TLS.
@Suite("E2E registry parity and robustness", e2eEnabled)
struct RegistryParityTests {
    /// An `LD_PRELOAD` library that makes every `flock` and `fcntl` lock request fail with
    /// ENOLCK, as on Lustre mounted `noflock`.
    static let noLockShim = """
        #define _GNU_SOURCE
        #include <dlfcn.h>
        #include <errno.h>
        #include <fcntl.h>
        #include <stdarg.h>
        #include <sys/file.h>
        int flock(int fd, int op) { (void)fd; (void)op; errno = ENOLCK; return -1; }
        static int is_lock(int cmd) {
            return cmd == F_SETLK || cmd == F_SETLKW || cmd == F_GETLK
                || cmd == 36 || cmd == 37 || cmd == 38;   /* F_OFD_GETLK, F_OFD_SETLK, F_OFD_SETLKW */
        }
        static int forward(const char *name, int fd, int cmd, void *arg) {
            int (*real)(int, int, ...) = (int (*)(int, int, ...))dlsym(RTLD_NEXT, name);
            return real(fd, cmd, arg);
        }
        int fcntl(int fd, int cmd, ...) {
            va_list ap; va_start(ap, cmd); void *arg = va_arg(ap, void *); va_end(ap);
            if (is_lock(cmd)) { errno = ENOLCK; return -1; }
            return forward("fcntl", fd, cmd, arg);
        }
        int fcntl64(int fd, int cmd, ...) {
            va_list ap; va_start(ap, cmd); void *arg = va_arg(ap, void *); va_end(ap);
            if (is_lock(cmd)) { errno = ENOLCK; return -1; }
            return forward("fcntl64", fd, cmd, arg);
        }
        """

    static var haveCC: Bool { FileManager.default.isExecutableFile(atPath: "/usr/bin/cc") }

    /// Builds the shim into the sandbox (readable by the test user).
    func buildNoLockShim(_ box: E2ESandbox) throws -> String {
        let src = "\(box.scratch)/nolock.c", lib = "\(box.scratch)/nolock.so"
        try Self.noLockShim.write(toFile: src, atomically: true, encoding: .utf8)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/cc")
        p.arguments = ["-shared", "-fPIC", "-O1", "-o", lib, src, "-ldl"]
        try p.run(); p.waitUntilExit()
        try #require(p.terminationStatus == 0, "cc failed to build the ENOLCK shim")
        chmod(lib, 0o755)
        return lib
    }

    @Test(
        "locks refused (ENOLCK, Lustre noflock): 8 concurrent pulls of one image all succeed, every blob verifies",
        .enabled(if: haveCC, "needs /usr/bin/cc to build the LD_PRELOAD shim"))
    func concurrentPullsWithoutLocks() async throws {
        let box = try sandbox()
        let shim = try buildNoLockShim(box)
        let image = box.env.debian
        // The shim really refuses locks in the user's process.
        let probe = try await box.shell("flock -n \(box.tmp)/probe true", environment: ["LD_PRELOAD": shim])
        #expect(probe.status != 0 && probe.stderr.contains("No locks available"), "the shim should make flock fail:\n\(probe)")
        let n = 8
        let results = try await withThrowingTaskGroup(of: CommandResult.self) { group in
            for _ in 0..<n {
                group.addTask { try await box.udocker(["pull", image], environment: ["LD_PRELOAD": shim]) }
            }
            var all: [CommandResult] = []
            for try await r in group { all.append(r) }
            return all
        }
        for r in results { expectSuccess(r) }
        let (config, layers) = try box.manifestDigests(image)
        for digest in [config] + layers {
            let path = "\(box.layersDirectory)/\(digest)"
            #expect(box.sha256(path).map { "sha256:\($0)" } == digest, "\(digest) does not hash to its name")
        }
        let leftovers = box.listDirectory(box.layersDirectory).filter { $0.hasSuffix(".partial") }
        #expect(leftovers.isEmpty, "download files left behind: \(leftovers)")
        expectSuccess(try await box.udocker(["verify", image], environment: ["LD_PRELOAD": shim]))
        let id = try await box.create(image)
        let r = try await box.run([id, "cat", "/etc/debian_version"])
        expectSuccess(r)
    }

    @Test("a corrupt blob of the right size: create fails in one line and evicts it, the next pull heals the image")
    func corruptBlobIsEvictedAtCreate() async throws {
        let box = try sandbox()
        let image = box.env.busybox
        try await box.pull(image)
        let (_, layers) = try box.manifestDigests(image)
        let victim = "\(box.layersDirectory)/\(try #require(layers.last))"
        let size = try #require(try FileManager.default.attributesOfItem(atPath: victim)[.size] as? Int)
        // Same size, different bytes: "already present" would trust it forever.
        try Data(repeating: 0x41, count: size).write(to: URL(fileURLWithPath: victim))
        try box.chownToUser(victim)
        let bad = try await box.udocker(["create", image])
        expectOneLineError(bad, status: nil, mentioning: ["corrupt", "pull"])
        #expect(!box.exists(victim), "the corrupt blob must be removed:\n\(bad)")
        #expect(try await box.psLines().isEmpty)
        try await box.pull(image)
        #expect(box.sha256(victim).map { "sha256:\($0)" } == layers.last)
        let id = try await box.create(image)
        expectSuccess(try await box.run([id, "cat", "/etc/e2e-release"]))
    }

    // MARK: short names under a configured registry (issue 14 item 1)

    @Test("UDOCKER_REGISTRY / --registry / udocker.conf: a one-word name means library/<name> there")
    func shortNamesUnderConfiguredRegistry() async throws {
        let box = try sandbox()
        let url = "http://\(box.env.registry)"
        try await box.pull("busybox", environment: ["UDOCKER_REGISTRY": url])
        #expect(try await box.imageLines() == ["busybox:latest    ."])
        let r = try await box.run(["busybox", "cat", "/etc/e2e-release"], environment: ["UDOCKER_REGISTRY": url])
        expectSuccess(r)
        #expect(r.stdout == "udocker-e2e busybox image\n", "\(r)")
        // --registry on the command, and the config file key
        try await box.pull("whiteout", ["--registry=\(url)"])
        try box.writeUserFile("\(box.home)/.udocker/udocker.conf", "[DEFAULT]\ndockerio_registry_url = \(url)\n")
        try await box.pull("debian:\(box.env.debianTag)")
        let lines = try await box.imageLines()
        #expect(lines.contains("whiteout:latest    .") && lines.contains("debian:\(box.env.debianTag)    ."), "\(lines)")
        // Not there: one line naming the repository, not a tag.
        let missing = try await box.udocker(["pull", "nosuchimage"], environment: ["UDOCKER_REGISTRY": url])
        expectOneLineError(missing, status: nil, mentioning: ["repository not found"])
        let noTag = try await box.udocker(["pull", "busybox:nosuchtag"], environment: ["UDOCKER_REGISTRY": url])
        expectOneLineError(noTag, status: nil, mentioning: ["tag not found"])
    }

    @Test("docker_registries in udocker.conf sends docker.io names to a mirror")
    func dockerRegistriesMirror() async throws {
        let box = try sandbox()
        try box.writeUserFile(
            "\(box.home)/.udocker/udocker.conf",
            "[DEFAULT]\ndocker_registries = {'docker.io': ['http://\(box.env.registry)', 'https://hub.docker.com']}\n")
        try await box.pull("docker.io/library/busybox:latest")
        try await box.pull("busybox")
        let lines = try await box.imageLines()
        #expect(lines.contains("busybox:latest    ."), "\(lines)")
    }

    @Test("plain http to a remote registry is refused without --insecure, in one line")
    func plainHTTPRemoteRefused() async throws {
        let box = try sandbox()
        let r = try await box.udocker(["pull", "--registry=http://registry.example.invalid:5000", "busybox"])
        expectOneLineError(r, status: nil, mentioning: ["refusing plain http", "--insecure"])
    }

    // MARK: search (issue 14 item 7)

    @Test("search on a registry uses its catalog, in udocker's columns; --list-tags lists tags")
    func searchCatalogAndTags() async throws {
        let box = try sandbox()
        let url = "http://\(box.env.registry)"
        let r = try await box.udocker(["search", "-a", "--index=\(url)", "busy"])
        expectSuccess(r)
        #expect(r.stdoutLines.first?.hasPrefix("NAME") == true && r.stdoutLines.first?.contains("OFFICIAL") == true, "\(r)")
        let rows = r.stdoutLines.dropFirst()
        #expect(rows.count == 1 && rows.first?.hasPrefix("library/busybox ") == true, "\(r)")
        #expect(rows.first?.split(separator: " ").dropFirst().first == "----", "\(r)")
        let all = try await box.udocker(["search", "-a", "--registry=\(url)", ""])
        expectSuccess(all)
        #expect(
            all.stdoutLines.contains { $0.hasPrefix("library/debian ") } && all.stdoutLines.contains { $0.hasPrefix("library/multi ") },
            "\(all)")
        let tags = try await box.udocker(["search", "--list-tags", "busybox"], environment: ["UDOCKER_REGISTRY": url])
        expectSuccess(tags)
        #expect(tags.stdoutLines == ["latest"], "\(tags)")
        let none = try await box.udocker(["search", "--list-tags", "\(box.env.registry)/library/nosuch"])
        expectOneLineError(none, status: nil, mentioning: ["repository not found"])
    }

    // MARK: TLS (issue 14 item 10)

    static var tlsRegistry: String? { ProcessInfo.processInfo.environment["UDOCKER_E2E_TLS_REGISTRY"].flatMap { $0.isEmpty ? nil : $0 } }
    static var tlsCA: String? { ProcessInfo.processInfo.environment["UDOCKER_E2E_TLS_CA"].flatMap { $0.isEmpty ? nil : $0 } }

    @Test(
        "TLS registry with a private CA: refused in words, trusted through SSL_CERT_FILE / SSL_CERT_DIR, accepted with --insecure",
        .enabled(if: tlsRegistry != nil && tlsCA != nil, "needs the TLS registry fixture (UDOCKER_E2E_TLS_REGISTRY, UDOCKER_E2E_TLS_CA)"))
    func tlsRegistryTrust() async throws {
        let box = try sandbox()
        let reg = try #require(Self.tlsRegistry), ca = try #require(Self.tlsCA)
        let url = "https://\(reg)"
        let refused = try await box.udocker(["pull", "--registry=\(url)", "busybox"])
        expectOneLineError(refused, status: nil, mentioning: ["not trusted", "SSL_CERT_FILE", "--insecure"])
        #expect(!refused.stderr.contains("BoringSSL") && !refused.stderr.contains("NIOSSL"), "library internals:\n\(refused)")
        #expect(try await box.imageLines().isEmpty)
        try await box.pull("busybox", ["--registry=\(url)"], environment: ["SSL_CERT_FILE": ca])
        // A directory of CA certificates (OpenSSL's c_rehash layout, as /etc/ssl/certs).
        let dir = "\(box.scratch)/certs"
        try box.makeUserDirectory(dir)
        let hash = try await box.shell("openssl x509 -hash -noout -in '\(ca)'")
        try FileManager.default.copyItem(atPath: ca, toPath: "\(dir)/\(hash.stdout.trimmingCharacters(in: .whitespacesAndNewlines)).0")
        try await box.pull("whiteout", ["--registry=\(url)"], environment: ["SSL_CERT_DIR": dir])
        let insecure = try await box.udocker(["--insecure", "pull", "--registry=\(url)", "debian:\(box.env.debianTag)"])
        expectSuccess(insecure)
        let lines = try await box.imageLines()
        #expect(lines.count == 3, "\(lines)")
    }

    @Test(
        "https_proxy / http_proxy from the environment carry the pull; no_proxy hosts are reached directly",
        .enabled(if: ConnectProxy.available, "needs /usr/bin/python3 for the CONNECT proxy"))
    func proxiesFromEnvironment() async throws {
        let box = try sandbox()
        let proxy = try await ConnectProxy.start(in: box.scratch)
        defer { proxy.stop() }
        try await box.pull("busybox", ["--registry=http://\(box.env.registry)"], environment: ["http_proxy": proxy.url])
        #expect(proxy.requestLines.contains("CONNECT \(box.env.registry) "), "not through the proxy: \(proxy.requestLines)")
        if let tls = Self.tlsRegistry, let ca = Self.tlsCA {
            try await box.pull("whiteout", ["--registry=https://\(tls)"], environment: ["https_proxy": proxy.url, "SSL_CERT_FILE": ca])
            #expect(proxy.requestLines.contains("CONNECT \(tls) "), "not through the proxy: \(proxy.requestLines)")
        }
        let before = proxy.requestLines
        try await box.pull(
            "multi", ["--registry=http://\(box.env.registry)"],
            environment: ["http_proxy": proxy.url, "no_proxy": "localhost,127.0.0.1"])
        #expect(proxy.requestLines == before, "a no_proxy host went through the proxy")
    }

    @Test("-D on pull shows the requests and auth steps, never the token or the password")
    func debugShowsRequestsNotSecrets() async throws {
        let box = try sandbox()
        try box.writeKeystore(registryURL: "http://\(box.env.tokenRegistry)", user: box.env.tokenUser, password: box.env.tokenPassword)
        let r = try await box.udocker(["-D", "pull", box.env.tokenBusybox])
        expectSuccess(r)
        #expect(r.stderr.contains("GET http://\(box.env.tokenRegistry)/v2/library/busybox/manifests/latest"), "\(r)")
        #expect(r.stderr.contains("asks for authentication: bearer"), "\(r)")
        #expect(r.stderr.contains("requesting a token") && r.stderr.contains("with stored credentials"), "\(r)")
        #expect(!r.stderr.contains(box.env.tokenPassword) && !r.stderr.contains("Bearer ey"), "secret in the output:\n\(r)")
        let basic = Data("\(box.env.tokenUser):\(box.env.tokenPassword)".utf8).base64EncodedString()
        #expect(!r.stderr.contains(basic), "credentials in the output:\n\(r)")
    }

    // MARK: import of a tar cut at an entry boundary (issue 10 defect 5)

    @Test("import refuses a tarball cut between two entries (GNU tar would accept it), in one line")
    func importCutTarball() async throws {
        let box = try sandbox()
        let s = box.scratch
        let prep = try await box.shell(
            """
            cd \(s) && mkdir -p d && head -c 1000 /dev/urandom > d/a && head -c 3000 /dev/urandom > d/b && \
            tar cf full.tar d && \
            off=$(python3 -c "import tarfile; print(tarfile.open('full.tar').getmembers()[-1].offset)") && \
            head -c $off full.tar > cut.tar && tar tf cut.tar > /dev/null
            """)
        try requireSuccess(prep)
        let bad = try await box.udocker(["import", "\(s)/cut.tar", "cut:1"])
        expectOneLineError(bad, status: nil, mentioning: ["truncated"])
        #expect(try await box.imageLines().isEmpty)
        expectSuccess(try await box.udocker(["import", "\(s)/full.tar", "full:1"]))
    }
}
