import Foundation
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// `udocker install` with nothing configured downloads udockertools from udocker 1.3.17's
/// published https URLs, as udocker does (issue 23, section 3). The download site is a local TLS
/// server standing in for both hosts, reached through a CONNECT proxy that routes the two host
/// names to it: udocker's own URLs, unchanged, as a site behind a proxy reaches them, with the
/// stand-in's certificate authority trusted the way registries' are (`SSL_CERT_FILE`).
@Suite("E2E install from udocker's download sites (issue 23)", e2eEnabled)
struct ToolsDownloadTests {
    /// udocker 1.3.17's `Config.conf['tarball']`, as its `version` prints it (checked against the
    /// Python udocker in `defaultsAreUdockers`).
    static let primary = "https://download.a.incd.pt/udocker/udocker-englib-1.2.11.tar.gz"
    static let mirror = "https://raw.githubusercontent.com/jorge-lip/udocker-builds/master/tarballs/udocker-englib-1.2.11.tar.gz"

    /// The stand-in: a certificate authority and a certificate for both hosts, made here; a TLS
    /// file server on 127.0.0.1 serving `site` by URL path; a proxy routing both hosts to it.
    struct StandIn {
        let server: ScriptedHTTPServer
        let proxy: ConnectProxy
        let ca: String
        var environment: [String: String] { ["https_proxy": proxy.url, "SSL_CERT_FILE": ca] }
        func stop() { server.stop(); proxy.stop() }
    }

    static func standIn(_ box: E2ESandbox, site: String) async throws -> StandIn {
        let pki = "\(box.scratch)/pki"
        try requireSuccess(
            try await box.shell(
                """
                set -e; mkdir -p \(pki); cd \(pki)
                openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=stand-in-CA \
                  -keyout ca.key -out ca.pem 2>/dev/null
                openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=download.a.incd.pt \
                  -keyout site.key -out site.csr 2>/dev/null
                printf 'subjectAltName=DNS:download.a.incd.pt,DNS:raw.githubusercontent.com\\nbasicConstraints=CA:FALSE\\nextendedKeyUsage=serverAuth\\n' > ext.cnf
                openssl x509 -req -in site.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile ext.cnf -out site.pem 2>/dev/null
                """))
        let server = try await ScriptedHTTPServer.start(
            in: box.path, name: "download-site", tls: ("\(pki)/site.pem", "\(pki)/site.key"),
            route: """
                p = os.path.join("\(site)", h.headers.get("Host", "").split(":")[0], path.split("?")[0].lstrip("/"))
                if not os.path.isfile(p): return 404, {}, "not found"
                return 200, {"Content-Type": "application/octet-stream"}, open(p, "rb").read()
                """)
        let target = "127.0.0.1:\(server.port)"
        let proxy = try await ConnectProxy.start(
            in: box.path, routes: ["download.a.incd.pt:443": target, "raw.githubusercontent.com:443": target])
        return StandIn(server: server, proxy: proxy, ca: "\(pki)/ca.pem")
    }

    /// A small tarball in udockertools layout: `lib/VERSION`, a script as the "proot" and a doc.
    static func tools(_ box: E2ESandbox, name: String, version: String = "1.2.11") async throws -> String {
        let stage = "\(box.scratch)/stage-\(name)", out = "\(box.scratch)/\(name)"
        try requireSuccess(
            try await box.shell(
                """
                set -e; mkdir -p \(stage)/udocker_dir/bin \(stage)/udocker_dir/lib \(stage)/udocker_dir/doc; cd \(stage)
                printf '#!/bin/sh\\necho stand-in proot %s\\n' \(version) > udocker_dir/bin/proot-x86_64
                chmod 755 udocker_dir/bin/proot-x86_64
                echo \(version) > udocker_dir/lib/VERSION; echo licence > udocker_dir/doc/COPYING.proot
                tar --owner=root --group=root -czf \(out) udocker_dir
                """))
        return out
    }

    /// Puts `tarball` where `url` points on the stand-in site.
    static func publish(_ box: E2ESandbox, _ tarball: String, at url: String, site: String) async throws {
        let file = "\(site)/\(url.dropFirst("https://".count))"
        try requireSuccess(try await box.shell("mkdir -p \"$(dirname \(file))\" && cp \(tarball) \(file)"))
    }

    @Test("version and showconf show udocker 1.3.17's tarball URLs and release, and what overrides them")
    func defaultsAreUdockers() async throws {
        let box = try sandbox()
        func line(_ r: CommandResult, _ prefix: String) -> String? { r.stdoutLines.first { $0.hasPrefix(prefix) } }
        let python = try await box.python(["version"])
        expectSuccess(python)
        for args in [["version"], ["--version"], ["-V"]] {
            let ours = try await box.udocker(args)
            expectSuccess(ours)
            #expect(line(ours, "tarball: ") == "tarball: \(Self.primary) \(Self.mirror)", "\(args): \(ours)")
            #expect(line(ours, "tarball: ") == line(python, "tarball: "), "\(args): \(ours)\n\(python)")
            #expect(line(ours, "tarball_release: ") == line(python, "tarball_release: "), "\(ours)\n\(python)")
        }
        let showconf = try await box.udocker(["showconf"]), pythonShowconf = try await box.python(["showconf"])
        expectSuccess(showconf)
        #expect(line(showconf, "tarball = ") == "tarball = \(Self.primary) \(Self.mirror)", "\(showconf)")
        #expect(line(showconf, "tarball = ") == line(pythonShowconf, "tarball = "), "\(pythonShowconf)")
        // UDOCKER_TARBALL, and the tarball key of a configuration file, replace them.
        let env = try await box.udocker(["version"], environment: ["UDOCKER_TARBALL": "/srv/tools.tar.gz"])
        #expect(line(env, "tarball: ") == "tarball: /srv/tools.tar.gz", "\(env)")
        try box.writeUserFile("\(box.udockerDir)/udocker.conf", "[DEFAULT]\ntarball = /srv/site-tools.tar.gz\n")
        for args in [["version"], ["-V"]] {
            let conf = try await box.udocker(args)
            #expect(line(conf, "tarball: ") == "tarball: /srv/site-tools.tar.gz", "\(args): \(conf)")
        }
    }

    @Test("install with nothing configured downloads from udocker's URLs over https, shows the SHA-256, and the tools are vetted")
    func installsFromDefaultURLs() async throws {
        let box = try sandbox()
        let site = "\(box.scratch)/site"
        let tarball = try await Self.tools(box, name: "englib.tar.gz")
        let sha = try #require(box.sha256(tarball))
        // Only the mirror has the file: the primary answers 404 and the mirror is tried next.
        try await Self.publish(box, tarball, at: Self.mirror, site: site)
        let standIn = try await Self.standIn(box, site: site)
        defer { standIn.stop() }

        let r = try await box.udocker(["install"], environment: standIn.environment)
        expectSuccess(r)
        #expect(r.stderr.contains("SHA-256 \(sha) (set UDOCKER_TARBALL_SHA256 to require it)"), "\(r)")
        #expect(r.stderr.contains(Self.primary) && r.stderr.contains(Self.mirror), "both sources tried in order:\n\(r)")
        #expect(standIn.proxy.requestLines.contains("CONNECT download.a.incd.pt:443"), "\(standIn.proxy.requestLines)")
        #expect(standIn.proxy.requestLines.contains("CONNECT raw.githubusercontent.com:443"), "\(standIn.proxy.requestLines)")
        let bin = "\(box.udockerDir)/bin"
        #expect(box.readFile("\(box.udockerDir)/lib/VERSION") == "1.2.11\n")
        #expect(box.readFile("\(box.udockerDir)/doc/COPYING.proot") == "licence\n")
        #expect(r.stdoutLines.contains("proot: \(bin)/proot-x86_64 (P1 P2 R2 R3)"), "\(r)")
        #expect(!box.listDirectory(box.layersDirectory).contains { $0.hasPrefix(".") }, "download left in layers/")

        // The downloaded tools follow the rules of every installed tool: changed, they are refused.
        let engines = ["UDOCKER_USE_PROOT_EXECUTABLE": "UDOCKER"]
        let before = try await box.udocker(["version", "--engines"], environment: engines)
        #expect(before.stdoutLines.contains("engine P1 P2: \(bin)/proot-x86_64"), "\(before)")
        try requireSuccess(try await box.shell("echo 'echo planted' >> \(bin)/proot-x86_64"))
        let after = try await box.udocker(["version", "--engines"], environment: engines)
        #expect(
            after.stdoutLines.contains { $0.hasPrefix("engine P1 P2: not available (\(bin)/proot-x86_64 changed since 'udocker install'") },
            "\(after)")

        // Current now: nothing is downloaded again.
        let requests = standIn.server.requests.count
        let again = try await box.udocker(["install"], environment: standIn.environment)
        expectSuccess(again)
        #expect(again.stderr.contains("already installed"), "\(again)")
        #expect(standIn.server.requests.count == requests, "\(standIn.server.requests)")
    }

    @Test("a configured SHA-256 is enforced on the download: a mismatch installs nothing and keeps the installed tools")
    func configuredChecksum() async throws {
        let box = try sandbox()
        let site = "\(box.scratch)/site"
        let first = try await Self.tools(box, name: "first.tar.gz")
        let second = try await Self.tools(box, name: "second.tar.gz", version: "1.2.12")
        let (sha1, sha2) = (try #require(box.sha256(first)), try #require(box.sha256(second)))
        try await Self.publish(box, first, at: Self.primary, site: site)
        let standIn = try await Self.standIn(box, site: site)
        defer { standIn.stop() }

        var env = standIn.environment
        env["UDOCKER_TARBALL_SHA256"] = sha1
        let good = try await box.udocker(["install"], environment: env)
        expectSuccess(good)
        #expect(good.stderr.contains("SHA-256 \(sha1) (as configured)"), "\(good)")
        let bin = "\(box.udockerDir)/bin", lib = "\(box.udockerDir)/lib"
        let installed = (box.listDirectory(bin), box.sha256("\(bin)/proot-x86_64"), box.readFile("\(lib)/VERSION"))

        // The site now serves another tarball on both URLs; the configured hash is the first one's.
        for url in [Self.primary, Self.mirror] { try await Self.publish(box, second, at: url, site: site) }
        for args in [["install", "--force"], ["install", "--purge", "--force"]] {
            let wrong = try await box.udocker(args, environment: env)
            expectOneLineError(wrong, mentioning: ["udockertools not installed", "SHA-256 is \(sha2), expected \(sha1)", Self.primary])
            #expect(box.listDirectory(bin) == installed.0 && box.sha256("\(bin)/proot-x86_64") == installed.1, "\(args): \(wrong)")
            #expect(box.readFile("\(lib)/VERSION") == installed.2, "\(args)")
        }
        // Without the configured hash the new one installs, and says which it was.
        env["UDOCKER_TARBALL_SHA256"] = nil
        let replaced = try await box.udocker(["install", "--force"], environment: env)
        expectSuccess(replaced)
        #expect(replaced.stderr.contains("installed udockertools 1.2.12: 3 file(s) from a tarball with SHA-256 \(sha2)"), "\(replaced)")
    }

    @Test("plain http to udocker's hosts is refused before any request; an unreachable https URL fails in one line")
    func refusedAndUnreachable() async throws {
        let box = try sandbox()
        let standIn = try await Self.standIn(box, site: "\(box.scratch)/site")
        defer { standIn.stop() }
        var env = standIn.environment
        env["http_proxy"] = standIn.proxy.url
        env["UDOCKER_TARBALL"] = "http://download.a.incd.pt/udocker/udocker-englib-1.2.11.tar.gz"
        let plain = try await box.udocker(["install"], environment: env)
        expectOneLineError(plain, mentioning: ["refusing plain http to download.a.incd.pt", "--insecure"])
        #expect(standIn.proxy.requestLines.isEmpty, "\(standIn.proxy.requestLines)")
        // udocker's URLs through the stand-in without trusting its CA: the system store does not know it.
        let untrusted = try await box.udocker(["install"], environment: ["https_proxy": standIn.proxy.url])
        expectOneLineError(untrusted, mentioning: ["TLS certificate is not trusted", "SSL_CERT_FILE", Self.primary, Self.mirror])
        #expect(standIn.server.requests.isEmpty, "nothing may be asked of a server not trusted: \(standIn.server.requests)")
        // Nothing listens on port 1 here: connection refused, at once, with the way out.
        let dead = "https://127.0.0.1:1/udocker-englib-1.2.11.tar.gz"
        let refused = try await box.udocker(["install"], environment: ["UDOCKER_TARBALL": dead], timeout: .seconds(120))
        expectOneLineError(
            refused, mentioning: [dead, "connection refused", "UDOCKER_TARBALL=/path/to/udocker-englib-1.2.11.tar.gz udocker install"])
        #expect(box.listDirectory("\(box.udockerDir)/bin").isEmpty && !box.exists("\(box.udockerDir)/lib/VERSION"))
    }

    @Test("a download site that accepts and never answers ends within the transfer limits, tried once")
    func silentSite() async throws {
        let box = try sandbox()
        let silent = try await ScriptedHTTPServer.start(
            in: box.path, name: "silent-site",
            route: """
                import time; time.sleep(600)
                return 500, {}, ""
                """)
        defer { silent.stop() }
        let url = "\(silent.base)/udocker-englib-1.2.11.tar.gz"
        let r = try await box.udocker(
            ["install"], environment: ["UDOCKER_TARBALL": url, "UDOCKER_TRANSFER_STALL_TIMEOUT": "2"], timeout: .seconds(120))
        expectOneLineError(r, mentioning: ["cannot download \(url)", "read timeout"])
        #expect(silent.requests == ["GET /udocker-englib-1.2.11.tar.gz"], "a silent site is not asked again: \(silent.requests)")
    }

    @Test(
        "offline (a network namespace without a route): install names udocker's URLs and UDOCKER_TARBALL in one line",
        .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/unshare"), "needs unshare (util-linux)"))
    func offline() async throws {
        let box = try sandbox()
        // The test user's own user and network namespace: no route anywhere, as on a compute node
        // without internet access. (This host resolves no names either; a CI host may.)
        let probe = try await box.shell("unshare --user --map-current-user --net true")
        try #require(probe.succeeded, "unprivileged user and network namespaces are needed: \(probe)")
        let r = try await box.command(timeout: .seconds(150)).run(
            "/usr/bin/unshare", ["--user", "--map-current-user", "--net", box.env.binary, "install"])
        expectOneLineError(
            r,
            mentioning: [
                "udockertools not installed", "cannot download \(Self.primary)", "cannot download \(Self.mirror)",
                "UDOCKER_TARBALL=/path/to/udocker-englib-1.2.11.tar.gz udocker install",
            ])
        #expect(!r.stderr.contains("trying again"), "nothing may pass when no address is reachable:\n\(r)")
        #expect(box.listDirectory("\(box.udockerDir)/bin").isEmpty && !box.exists("\(box.udockerDir)/lib/VERSION"))
        // A tarball of one's own still installs offline.
        let tarball = try await Self.tools(box, name: "local.tar.gz")
        let local = try await box.command(environment: ["UDOCKER_TARBALL": tarball]).run(
            "/usr/bin/unshare", ["--user", "--map-current-user", "--net", box.env.binary, "install"])
        expectSuccess(local)
        #expect(box.readFile("\(box.udockerDir)/lib/VERSION") == "1.2.11\n")
    }
}
