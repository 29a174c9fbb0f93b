import Foundation
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// The security review of December 2026 (issue 23, sections 1 and 2), each finding reproduced as
/// the unprivileged user the way the review did, and refused or contained now.
@Suite("E2E security review 2026-12 (issue 23)", e2eEnabled)
struct SecurityReviewTests {
    static let hasMPICompiler: ConditionTrait = .enabled(
        if: FileManager.default.isExecutableFile(atPath: "/usr/bin/mpicc")
            && FileManager.default.fileExists(atPath: "/usr/lib/x86_64-linux-gnu/libmpi.so.40"),
        "needs Open MPI's mpicc and libmpi.so.40 on the host (scripts/test-deps.sh installs libopenmpi-dev)")

    /// N1: a user-owned host Open MPI (as Spack or EasyBuild install one in $HOME) under
    /// `--mpi=host`. The program in the container appends to its libmpi (the bound host file) and
    /// plants a component in the plugin directory: both fail read-only; `/dev/shm` stays writable.
    @Test(
        "--mpi=host: the container cannot change a user-owned host MPI (N1, R1 read-only; P1 refuses; F3 refuses)",
        hasMPICompiler, arguments: ["N1", "R1", "P1", "F3"])
    func hostMPIIsReadOnly(_ mode: String) async throws {
        let box = try sandbox("mpiro-\(mode)")
        let id = try await box.pullAndCreate(box.env.image("mpi-openmpi"), name: "mpi")
        let s = box.scratch
        let lib = "\(s)/hostmpi/lib", plugins = "\(s)/hostmpi/lib/openmpi/lib"
        let sys = "/usr/lib/x86_64-linux-gnu"
        let source = """
            #include <mpi.h>
            #include <stdio.h>
            #include <errno.h>
            #include <string.h>
            int main(int argc, char **argv) {
              int f = 0; MPI_Initialized(&f);
              for (int i = 1; i < argc; i++) {
                FILE *o = fopen(argv[i], "a");
                if (!o) { printf("%s: %s\\n", argv[i], strerror(errno)); continue; }
                fputs("#PWNED from the container\\n", o);
                if (fclose(o) != 0) printf("%s: %s\\n", argv[i], strerror(errno)); else printf("%s: written\\n", argv[i]);
              }
              return 0;
            }
            """
        try box.writeUserFile("\(s)/tamper.c", source)
        try requireSuccess(
            try await box.shell(
                """
                set -e; mkdir -p \(plugins)
                for l in libmpi.so.40 libopen-rte.so.40 libopen-pal.so.40; do cp -L \(sys)/$l \(lib)/$l; done
                echo component > \(plugins)/mca_e2e.so
                mpicc -o \(s)/tamper \(s)/tamper.c
                cp \(s)/tamper '\(box.containerRoot(id))/usr/local/bin/tamper'
                """))
        if mode != "N1" { try requireSuccess(try await box.udocker(["setup", "--execmode=\(mode)", "mpi"])) }
        let before = box.sha256("\(lib)/libmpi.so.40")
        let shm = "/dev/shm/udocker-e2e-\(UUID().uuidString.prefix(8))"
        defer { unlink(shm) }
        let job = ["LD_LIBRARY_PATH": lib, "SLURM_JOB_ID": "23"]
        let r = try await box.run(
            ["--nobanner", "--mpi=host", "mpi", "/usr/local/bin/tamper", "\(sys)/libmpi.so.40", "\(plugins)/mca_planted.so", shm],
            environment: job)
        switch mode {
        case "P1":
            expectOneLineError(r, status: 2, mentioning: ["cannot bind host files read-only", lib, "N1, R1-R3 or S1"])
        case "F3":
            expectOneLineError(r, status: 2, mentioning: ["--mpi=host is not supported by F3"])
        default:
            expectSuccess(r)
            #expect(
                r.stdoutLines == [
                    "\(sys)/libmpi.so.40: Read-only file system", "\(plugins)/mca_planted.so: Read-only file system",
                    "\(shm): written",
                ], "\(mode): \(r)")
        }
        #expect(box.sha256("\(lib)/libmpi.so.40") == before, "\(mode): the host's libmpi was changed from the container")
        #expect(box.listDirectory(plugins) == ["mca_e2e.so"], "\(mode): a component was planted in the host's plugin directory")
        // Without --mpi=host the container changes only its own copy (the program does write).
        let own = try await box.run(["--nobanner", "mpi", "/usr/local/bin/tamper", "\(sys)/libmpi.so.40"], environment: job)
        expectSuccess(own)
        #expect(own.stdout == "\(sys)/libmpi.so.40: written\n", "\(mode): \(own)")
    }

    static let outer: ConditionTrait = .enabled(
        if: ScriptedHTTPServer.available && ScriptedHTTPServer.outerIPv4 != nil,
        "needs python3 and a non-loopback IPv4 address on this host to serve a 'remote' site from")

    /// A download site serving the files of `directory` on every address of this host.
    static func fileServer(_ box: E2ESandbox, serving directory: String, host: String) async throws -> ScriptedHTTPServer {
        try await ScriptedHTTPServer.start(
            in: box.path, name: "files-\(host)", host: host,
            route: """
                p = os.path.join("\(directory)", path.split("?")[0].lstrip("/"))
                if not os.path.isfile(p): return 404, {}, "not found"
                return 200, {"Content-Type": "application/octet-stream"}, open(p, "rb").read()
                """)
    }

    /// N2: `install` and `import` of a remote plain-http URL (here this host's own non-loopback
    /// address, which is not loopback for udocker) are refused without --insecure, before any
    /// request; loopback stays allowed; what is installed always shows its SHA-256.
    @Test("install and import over plain http to a remote host: refused unless --insecure; the SHA-256 is shown", outer)
    func plainHTTPDownloads() async throws {
        let box = try sandbox()
        let address = try #require(ScriptedHTTPServer.outerIPv4)
        let site = "\(box.scratch)/site"
        try box.makeUserDirectory(site)
        let tools = try await InstallTests().tarball(box)
        try requireSuccess(
            try await box.shell(
                """
                set -e; cp \(tools) \(site)/tools.tar.gz
                mkdir -p \(box.scratch)/rootfs/etc && echo hi > \(box.scratch)/rootfs/etc/hello
                tar -C \(box.scratch)/rootfs -cf \(site)/rootfs.tar .
                """))
        let remote = try await Self.fileServer(box, serving: site, host: address)
        defer { remote.stop() }
        let local = try await Self.fileServer(box, serving: site, host: "127.0.0.1")
        defer { local.stop() }
        let sha = try #require(box.sha256("\(site)/tools.tar.gz"))

        let install = try await box.udocker(["install"], environment: ["UDOCKER_TARBALL": "\(remote.base)/tools.tar.gz"])
        expectOneLineError(install, mentioning: ["refusing plain http to \(remote.hostPort)", "--insecure"])
        #expect(!box.exists("\(box.udockerDir)/lib/VERSION") && box.listDirectory("\(box.udockerDir)/bin").isEmpty)
        let imported = try await box.udocker(["import", "\(remote.base)/rootfs.tar", "url/remote:1"])
        expectOneLineError(imported, mentioning: ["refusing plain http to \(remote.hostPort)", "--insecure"])
        #expect(remote.requests.isEmpty, "nothing may be fetched over plain http: \(remote.requests)")
        #expect(!(try await box.udocker(["images"])).stdout.contains("url/remote"))
        #expect(!box.listDirectory(box.layersDirectory).contains { $0.hasPrefix(".download-") }, "download file left behind")

        // --insecure takes it, and says what was installed.
        let insecure = try await box.udocker(["--insecure", "install"], environment: ["UDOCKER_TARBALL": "\(remote.base)/tools.tar.gz"])
        expectSuccess(insecure)
        #expect(insecure.stderr.contains("SHA-256 \(sha)"), "\(insecure)")
        #expect(box.readFile("\(box.udockerDir)/lib/VERSION") == "1.2.11\n")
        expectSuccess(try await box.udocker(["--insecure", "import", "\(remote.base)/rootfs.tar", "url/remote:1"]))
        // Loopback is this host: plain http allowed; a configured SHA-256 is honoured.
        let again = try await box.udocker(
            ["install", "--force"], environment: ["UDOCKER_TARBALL": "\(local.base)/tools.tar.gz", "UDOCKER_TARBALL_SHA256": sha])
        expectSuccess(again)
        #expect(again.stderr.contains("SHA-256 \(sha) (as configured)"), "\(again)")
        let wrong = try await box.udocker(
            ["install", "--force"],
            environment: ["UDOCKER_TARBALL": "\(local.base)/tools.tar.gz", "UDOCKER_TARBALL_SHA256": String(repeating: "1", count: 64)])
        expectOneLineError(wrong, mentioning: ["SHA-256 is \(sha)"])
        expectSuccess(try await box.udocker(["import", "\(local.base)/rootfs.tar", "url/local:1"]))
        let id = try await box.create("url/local:1")
        #expect(box.readFile("\(box.containerRoot(id))/etc/hello") == "hi\n")
    }

    /// A "public" registry (this host's non-loopback address, plain http with --insecure) whose
    /// Bearer challenge names `realm` for its token service.
    static func challengingRegistry(_ box: E2ESandbox, name: String, realm: String) async throws -> ScriptedHTTPServer {
        try await ScriptedHTTPServer.start(
            in: box.path, name: name, host: try #require(ScriptedHTTPServer.outerIPv4),
            route: """
                if path.startswith("/token"): return 200, {"Content-Type": "application/json"}, '{"token":"public-token"}'
                if h.headers.get("Authorization"):
                    return 404, {"Content-Type": "application/json"}, '{"errors":[{"code":"MANIFEST_UNKNOWN","message":"no"}]}'
                r = "\(realm)".replace("SELF", "http://%s:%d" % (h.server.server_address[0], port))
                return 401, {"WWW-Authenticate": 'Bearer realm="%s",service="x"' % r, "Content-Type": "application/json"}, "{}"
                """)
    }

    /// N3: a registry off loopback names a token realm on 127.0.0.1 (an internal service whose
    /// answer udocker would send back to the registry): refused like a redirect, for `pull` and
    /// for `login`, before any request reaches the internal service.
    @Test("a Bearer realm pointing a public registry's token request at loopback is refused (pull and login)", outer)
    func tokenRealmInScope() async throws {
        let box = try sandbox()
        let inner = try await ScriptedHTTPServer.start(
            in: box.path, name: "internal",
            route: #"return 200, {"Content-Type": "application/json"}, '{"token":"internal-secret-token"}'"#)
        defer { inner.stop() }
        let registry = try await Self.challengingRegistry(box, name: "public-registry", realm: "\(inner.base)/token")
        defer { registry.stop() }
        let env = ["UDOCKER_REGISTRY": registry.base]
        let pull = try await box.udocker(["--insecure", "pull", "x/y:latest"], environment: env)
        expectOneLineError(
            pull, status: nil, mentioning: ["refusing token realm from", "host \(registry.host) to loopback address 127.0.0.1"])
        let login = try await box.udocker(
            ["--insecure", "login", "--username=u", "--password-stdin", "--registry=\(registry.base)"], stdin: "p\n")
        expectOneLineError(login, status: nil, mentioning: ["refusing token realm from", "to loopback address 127.0.0.1"])
        #expect(inner.requests.isEmpty, "the internal service was asked: \(inner.requests)")
        #expect(!box.exists("\(box.home)/.udocker/keystore"))
        #expect(!registry.requests.contains { $0.contains("internal-secret") })

        // The same registry with its token service on itself: followed (then the image is missing).
        let own = try await Self.challengingRegistry(box, name: "self-realm-registry", realm: "SELF/token")
        defer { own.stop() }
        let r = try await box.udocker(["--insecure", "pull", "x/y:latest"], environment: ["UDOCKER_REGISTRY": own.base])
        #expect(r.status != 0 && !r.stderr.contains("refusing"), "\(r)")
        #expect(own.requests.contains { $0.hasPrefix("GET /token?") }, "\(own.requests)")
    }

    /// N3, second gap: through a proxy, a redirect to a name that does not resolve here would be
    /// resolved by the proxy in its own network: refused from a registry known to be public.
    @Test("through a proxy, a redirect from a public registry to a name that does not resolve here is refused", outer)
    func unresolvableRedirectThroughAProxy() async throws {
        let box = try sandbox()
        let registry = try await ScriptedHTTPServer.start(
            in: box.path, name: "redirecting", host: try #require(ScriptedHTTPServer.outerIPv4),
            route: """
                if path == "/v2/": return 200, {}, "{}"
                return 302, {"Location": "http://metadata.e2e-internal.invalid/computeMetadata/v1/"}, ""
                """)
        defer { registry.stop() }
        let proxy = try await ConnectProxy.start(in: box.path)
        defer { proxy.stop() }
        let env = ["UDOCKER_REGISTRY": registry.base, "http_proxy": proxy.url, "no_proxy": registry.host]
        let r = try await box.udocker(["--insecure", "pull", "x/y:latest"], environment: env)
        expectOneLineError(r, status: nil, mentioning: ["metadata.e2e-internal.invalid", "does not resolve here"])
        #expect(!proxy.requestLines.contains("metadata"), "\(proxy.requestLines)")
    }
}

/// The low findings of the same review (issue 23, section 2).
@Suite("E2E security review 2026-12: lows (issue 23)", e2eEnabled)
struct SecurityReviewLowTests {
    /// A docker-archive (`esc/env:1`, busybox as /bin/sh) whose image `Env` has an invalid key (a
    /// space) made of escape sequences and whose layer has an entry name climbing above the root with escape sequences.
    static func hostileArchive(_ box: E2ESandbox) async throws -> String {
        let out = "\(box.scratch)/esc.tar"
        let script = #"""
            import tarfile, io, json, hashlib, sys
            out, bb = sys.argv[1], sys.argv[2]
            ESC, BEL = chr(27), chr(7)
            layer = io.BytesIO()
            with tarfile.open(fileobj=layer, mode="w", format=tarfile.GNU_FORMAT) as t:
                d = tarfile.TarInfo("bin"); d.type = tarfile.DIRTYPE; d.mode = 0o755; t.addfile(d)
                t.add(bb, "bin/busybox")
                l = tarfile.TarInfo("bin/sh"); l.type = tarfile.SYMTYPE; l.linkname = "busybox"; t.addfile(l)
                bad = tarfile.TarInfo("../../" + ESC + "]0;PWNED-TITLE" + BEL + ESC + "[2Jx"); t.addfile(bad, io.BytesIO(b""))
            data = layer.getvalue()
            cfg = json.dumps({"architecture": "amd64", "os": "linux",
                "config": {"Env": ["PATH=/bin", ESC + "[2J" + ESC + "]0;ENV" + BEL + " KEY=x"], "Cmd": ["sh"]},
                "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(data).hexdigest()]}}).encode()
            name = hashlib.sha256(cfg).hexdigest() + ".json"
            with tarfile.open(out, "w") as t:
                def add(n, b):
                    i = tarfile.TarInfo(n); i.size = len(b); t.addfile(i, io.BytesIO(b))
                add("layer.tar", data); add(name, cfg)
                add("manifest.json", json.dumps([{"Config": name, "RepoTags": ["esc/env:1"], "Layers": ["layer.tar"]}]).encode())
            """#
        try requireSuccess(try await box.command().run("/usr/bin/python3", ["-c", script, out, "/bin/busybox"]))
        return out
    }

    static func expectNoControlCharacters(_ text: String, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let bad = text.unicodeScalars.filter { ($0.value < 0x20 && $0 != "\n" && $0 != "\t") || (0x7F...0x9F).contains($0.value) }
        #expect(bad.isEmpty, "\(what) has control characters: \(text.debugDescription)", sourceLocation: sourceLocation)
    }

    /// N4 (tar entry names in warnings, image Env warnings) and L10 (load says it replaced a tag).
    @Test("escape sequences in an image's entry names and Env are shown as \\xNN; load says which tags it replaced")
    func imageStringsAreSanitised() async throws {
        let box = try sandbox()
        let archive = try await Self.hostileArchive(box)
        let first = try await box.udocker(["load", "-i", archive])
        expectSuccess(first)
        #expect(first.stderr.contains("loaded image: esc/env:1") && !first.stderr.contains("replaced"), "\(first)")
        let second = try await box.udocker(["load", "-i", archive])
        expectSuccess(second)
        #expect(second.stderr.contains("loaded image: esc/env:1 (replaced the existing tag)"), "\(second)")
        let create = try await box.udocker(["create", "--name=esc", "esc/env:1"])
        expectSuccess(create)
        Self.expectNoControlCharacters(create.stderr, "create's warnings")
        #expect(create.stderr.contains(#"\x1B]0;PWNED-TITLE\x07\x1B[2Jx"#), "\(create)")
        let run = try await box.run(["--nobanner", "esc", "sh", "-c", "echo ran"])
        expectSuccess(run)
        #expect(run.stdout == "ran\n")
        Self.expectNoControlCharacters(run.stderr, "run's warnings")
        #expect(run.stderr.contains(#"ignoring invalid variable in the image Env: \x1B[2J\x1B]0;ENV\x07 KEY=x"#), "\(run)")
    }

    /// N4: registry strings (catalog names, tag lists, index platforms).
    @Test(
        "escape sequences from a registry (search, --list-tags, platform list) are shown as \\xNN",
        .enabled(if: ScriptedHTTPServer.available, "needs python3 for the hostile registry"))
    func registryStringsAreSanitised() async throws {
        let box = try sandbox()
        let registry = try await ScriptedHTTPServer.start(
            in: box.path, name: "escapes",
            route: #"""
                ESC, BEL = chr(27), chr(7)
                j = {"Content-Type": "application/json"}
                if path == "/v2/": return 200, j, "{}"
                if path.startswith("/v2/_catalog"):
                    return 200, j, json.dumps({"repositories": ["ok/name", "evil/" + ESC + "]0;PWNED" + BEL + ESC + "[2J" + ESC + "[32mInfo: fine"]})
                if path.startswith("/v2/x/y/tags/list"):
                    return 200, j, json.dumps({"name": "x/y", "tags": ["ok", ESC + "[31mred"]})
                if path.startswith("/v2/x/y/manifests/"):
                    m = {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:" + "a" * 64, "size": 100,
                         "platform": {"os": "linux" + ESC + "[2J", "architecture": "arm64"}}
                    return 200, {"Content-Type": "application/vnd.oci.image.index.v1+json"}, json.dumps(
                        {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [m]})
                return 404, j, "{}"
                """#)
        defer { registry.stop() }
        let search = try await box.udocker(["search", "--registry=\(registry.base)", "evil"])
        expectSuccess(search)
        Self.expectNoControlCharacters(search.stdout, "search")
        #expect(search.stdout.contains(#"evil/\x1B]0;PWNED\x07\x1B[2J\x1B[32mInfo: fine"#), "\(search)")
        let tags = try await box.udocker(["search", "--list-tags", "\(registry.hostPort)/x/y"])
        expectSuccess(tags)
        #expect(tags.stdoutLines == ["ok", #"\x1B[31mred"#], "\(tags)")
        let pull = try await box.udocker(["pull", "--platform=linux/s390x", "\(registry.hostPort)/x/y:latest"])
        expectOneLineError(pull, status: nil, mentioning: [#"linux\x1B[2J/arm64"#])
        Self.expectNoControlCharacters(pull.stderr, "pull's error")
    }

    /// N7: `import --mv` of a symlink used to store the symlink itself as the layer.
    @Test("import --mv of a symlink stores the file's bytes, removes the symlink and keeps the file")
    func importMoveOfASymlink() async throws {
        let box = try sandbox()
        let s = box.scratch
        try requireSuccess(
            try await box.shell(
                "set -e; mkdir -p \(s)/r/etc; echo one > \(s)/r/etc/v; tar -C \(s)/r -cf \(s)/abs.tar .; ln -s \(s)/abs.tar \(s)/link.tar"))
        expectSuccess(try await box.udocker(["import", "--mv", "\(s)/link.tar", "mvimg:v1"]))
        let layers = box.listDirectory(box.layersDirectory).filter { $0.hasSuffix(".layer") }
        #expect(layers.count == 1 && layers.allSatisfy { !box.isSymlink("\(box.layersDirectory)/\($0)") }, "\(layers)")
        #expect(!box.isSymlink("\(s)/link.tar") && !box.exists("\(s)/link.tar"), "the symlink given to --mv is removed")
        #expect(box.readFile("\(s)/abs.tar") != nil, "the file it pointed to is the user's: kept")
        let verify = try await box.udocker(["verify", "--all"])
        #expect(verify.status == 0, "\(verify)")
        try requireSuccess(try await box.shell("echo x >> \(s)/abs.tar"))
        let id = try await box.create("mvimg:v1")
        #expect(box.readFile("\(box.containerRoot(id))/etc/v") == "one\n")
    }

    /// L6: `.<name>.tmp-<pid>-<n>` temporaries of a killed metadata write in layers/.
    @Test("rmi --prune and verify --all --repair remove old temporaries of dead writers, never a live or recent one")
    func temporaryLeftovers() async throws {
        let box = try sandbox()
        try await box.pull(box.env.busybox)
        let layers = box.layersDirectory
        let maxPid =
            Int(
                (try? String(contentsOfFile: "/proc/sys/kernel/pid_max", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
                    ?? "") ?? 4_194_304
        let dead = maxPid - 1
        let old = ".x.json.tmp-\(dead)-12345", recent = ".y.json.tmp-\(dead)-777", live = ".z.json.tmp-1-42"
        func plant() async throws {
            try requireSuccess(
                try await box.shell(
                    "cd \(layers) && for f in \(old) \(recent) \(live); do echo partial > $f; done && touch -d '-2 hours' \(old) \(live)"))
        }
        try await plant()
        let verify = try await box.udocker(["verify", "--all"])
        #expect(verify.stderr.contains(old) && !verify.stderr.contains(recent) && !verify.stderr.contains(live), "\(verify)")
        #expect(box.exists("\(layers)/\(old)"), "verify without --repair removed something")
        expectSuccess(try await box.udocker(["verify", "--all", "--repair"]))
        #expect(!box.exists("\(layers)/\(old)") && box.exists("\(layers)/\(recent)") && box.exists("\(layers)/\(live)"))
        try await plant()
        expectSuccess(try await box.udocker(["rmi", "--prune", "-f"]))
        #expect(!box.exists("\(layers)/\(old)"), "an old temporary of a dead writer is pruned")
        #expect(box.exists("\(layers)/\(recent)"), "a temporary younger than a minute is kept, even with -f")
        #expect(box.exists("\(layers)/\(live)"), "a temporary whose writer runs is kept")
        expectSuccess(try await box.run(["--nobanner", box.env.busybox, "true"]))
    }

    /// L7: showconf masks the whole userinfo: token-only, and passwords with `/` or `@` unencoded.
    @Test(
        "showconf masks every credential in a proxy URL",
        arguments: [
            ("socks5h://ghp_SECRETTOKEN@proxy.example:1080", "socks5h://***@proxy.example:1080"),
            ("http://alice:pa/ss@proxy.example:3128", "http://***@proxy.example:3128"),
            ("http://alice:p@ss@proxy.example:3128", "http://***@proxy.example:3128"),
            ("http://proxy.example:3128", "http://proxy.example:3128"),
        ])
    func showconfMasks(value: String, shown: String) async throws {
        let box = try sandbox()
        try box.makeUserDirectory(box.udockerDir)
        try box.writeUserFile("\(box.udockerDir)/udocker.conf", "[DEFAULT]\nhttp_proxy = \(value)\n")
        let r = try await box.udocker(["showconf"])
        expectSuccess(r)
        #expect(r.stdoutLines.contains("http_proxy = \(shown)"), "\(r)")
        for secret in ["SECRETTOKEN", "pa/ss", "p@ss", "alice"] { #expect(!r.stdout.contains(secret), "\(secret): \(r)") }
    }

    /// N5: Docker's credential helper is looked up through absolute PATH entries only.
    @Test(
        "a docker-credential helper in the current directory is not run through a relative PATH entry",
        .enabled(
            if: ProcessInfo.processInfo.environment["UDOCKER_E2E_HTPASSWD_REGISTRY"]?.isEmpty == false,
            "needs the htpasswd registry fixture (UDOCKER_E2E_HTPASSWD_REGISTRY)"))
    func credentialHelperFromTheCurrentDirectory() async throws {
        let t = try LoginTests.Box()
        defer { t.box.remove() }
        // The commands run in the sandbox directory: the helper sits there and in a relative `bin`.
        try t.helper("e2ecwd", in: t.box.path, user: t.user, secret: t.password)
        try t.helper("e2ecwd", in: "\(t.box.path)/bin", user: t.user, secret: t.password)
        try t.dockerConfig(#"{"credsStore": "e2ecwd"}"#)
        let r = try await t.box.udocker(["pull", t.image], environment: ["PATH": "\(E2ESandbox.defaultPath):.:bin"])
        expectOneLineError(r, status: nil)
        #expect(!t.box.exists("\(t.box.path)/e2ecwd.asked"), "the helper in the current directory ran")
        // The same helper through an absolute entry is Docker's lookup: used.
        try await t.box.pull(t.image, environment: ["PATH": "\(t.box.path)/bin:\(E2ESandbox.defaultPath)"])
        #expect(t.box.readFile("\(t.box.path)/e2ecwd.asked") == "\(t.registry)\n")
    }

    /// L2: R1 without a terminal starts the command with `runc run --detach`, then waits for it.
    /// A wrapper runtime that ignores SIGTERM and lingers after runc returned widens the window
    /// between the runtime's end and the wait for the command: a SIGTERM to udocker then must
    /// reach the command (which exits 143 from its trap), not be lost with the runtime.
    @Test("R1: a SIGTERM while the detached runtime finishes reaches the command (exit 143)")
    func r1DetachedSignalWindow() async throws {
        let box = try sandbox()
        _ = try await box.pullAndCreate(box.env.busybox, name: "bb")
        try requireSuccess(try await box.udocker(["setup", "--execmode=R1", "bb"]))
        let rt = "\(box.scratch)/rt", mark = "\(box.scratch)/runtime-returned"
        try box.writeUserFile(
            "\(rt)/runc",
            """
            #!/bin/sh
            trap '' TERM
            /usr/bin/runc "$@"
            s=$?
            case " $* " in *" run --detach "*) : > \(mark); sleep 3 ;; esac
            exit $s
            """, mode: 0o755)
        try box.writeUserFile("\(box.udockerDir)/udocker.conf", "[DEFAULT]\nuse_runc_executable = \(rt)/runc\n")
        let log = "\(box.scratch)/run.stderr"
        let p = try RawRun.start(box, ["run", "--nobanner", "bb", "sh", "-c", "trap 'exit 143' TERM; sleep 20 & wait"], stderrPath: log)
        let deadline = ContinuousClock.now + .seconds(120)  // by the clock: polls slow down under load
        while p.isRunning && !box.exists(mark) && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        try #require(box.exists(mark), "the runtime never returned: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "-")")
        kill(p.processIdentifier, SIGTERM)
        await RawRun.wait(p)
        #expect(
            RawRun.status(p) == 143,
            "udocker: \(RawRun.status(p)); \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "-")")
    }

    /// N8: the session-directory variables bind only a launcher's own directory.
    @Test("a job's session directory is bound only when its launcher started the task, never $HOME")
    func sessionDirectoryBounds() async throws {
        let box = try sandbox()
        _ = try await box.pullAndCreate(box.env.busybox, name: "bb")
        let session = "\(box.scratch)/ompi.session"
        try box.makeUserDirectory(session)
        func plant(_ dir: String, _ env: [String: String]) async throws -> CommandResult {
            try await box.run(["--nobanner", "bb", "sh", "-c", "echo x > \(dir)/planted-by-job && echo planted"], environment: env)
        }
        // The review's reproduction: a Slurm job whose Open MPI session directory is $HOME.
        for env in [
            ["SLURM_JOB_ID": "42", "OMPI_MCA_orte_top_session_dir": box.home],
            ["SLURM_JOB_ID": "42", "OMPI_COMM_WORLD_SIZE": "1", "OMPI_MCA_orte_top_session_dir": box.home],
            ["SLURM_JOB_ID": "42", "OMPI_MCA_orte_top_session_dir": session],
        ] {
            let r = try await plant(env["OMPI_MCA_orte_top_session_dir"]!, env)
            #expect(r.stdout.isEmpty, "\(env): \(r)")
        }
        #expect(!box.exists("\(box.home)/planted-by-job") && !box.exists("\(session)/planted-by-job"))
        // mpirun's own session directory is shared with the rank.
        let rank = try await plant(session, ["OMPI_COMM_WORLD_SIZE": "1", "OMPI_MCA_orte_top_session_dir": session])
        expectSuccess(rank)
        #expect(rank.stdout == "planted\n" && box.exists("\(session)/planted-by-job"), "\(rank)")
    }
}
