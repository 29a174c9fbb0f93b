import Foundation
import OCI
import UDockerSystem
import TestSupport
import Testing
@testable import Registry
@testable import Store

/// Faults a real registry (or the path to it) produces: 5xx, resets while reading small bodies,
/// Retry-After as an HTTP-date, malformed digests, plain http to remote hosts.
/// Issue 23: a blob body that stalls or drips ends the download with one error after the
/// configured limits (not retried), its partial file kept for the next pull.
@Suite struct TransferLimitTests {
    func client(_ limits: TransferLimits) throws -> RegistryClient {
        var o = RegistryOptions(maxAttempts: 4, retryBaseDelay: 0.05, maxRetryDelay: 5)
        o.transferLimits = limits
        return try RegistryClient(options: o)
    }

    func pull(_ limits: TransferLimits, _ reply: @escaping @Sendable ([UInt8]) -> StubServer.Reply) async throws -> (Error?, [String]) {
        let reg = try await FakeRegistry()
        let c = try client(limits)
        let dir = try TemporaryDirectory()
        let bytes = testBytes(200_000, seed: 90)
        let image = reg.putImage(repo: "app", tag: "1", layers: [bytes])
        reg.setHook { r in r.path.hasSuffix(image.layers[0].digest.description) && r.header("Range") == nil ? reply(bytes) : nil }
        var failure: Error?
        do { try await c.fetchBlobs(ImageReference(parsing: "\(reg.host)/app:1"), image.layers, into: dir.path, progress: nil) } catch {
            failure = error
        }
        await c.shutdown(); await reg.stop()
        return (failure, FileInfo.list(dir.path).filter { $0.hasSuffix(".partial") })
    }

    @Test func aStalledBodyEndsAfterTheStallTimeout() async throws {
        let (error, partials) = try await pull(TransferLimits(stallTimeout: 1, minimumRate: 0, rateWindow: 0)) { b in
            .stall(status: 200, headers: [], body: b, sendBytes: 64 << 10)
        }
        #expect("\(error.map { "\($0)" } ?? "none")".contains("no data for 1 s (transfer_stall_timeout); 65536 of 200000 bytes kept"))
        #expect(partials.count == 1)
    }

    @Test func aDrippingBodyEndsUnderTheMinimumRate() async throws {
        let (error, partials) = try await pull(TransferLimits(stallTimeout: 30, minimumRate: 1000, rateWindow: 1)) { b in
            .stall(status: 200, headers: [], body: b, sendBytes: 1000, dripBytes: 100, dripMilliseconds: 100)
        }
        #expect("\(error.map { "\($0)" } ?? "none")".contains("less than 1000 bytes/s for 1 s"))
        #expect(partials.count == 1)
    }

    @Test func theTimeLimitCancelsAndSaysSo() async throws {
        await expectFailure("did not finish within 0.2 s (pull_timeout)") {
            _ = try await RegistryClient.withTimeLimit(0.2) { try await Task.sleep(for: .seconds(30)) }
        }
    }
}

@Suite struct ServerFaultTests {
    @Test func serverErrorsThenSuccessArePulled() async throws {
        try await withRegistry { reg, client, dir in
            let image = reg.putImage(repo: "library/app", tag: "1", layers: [testBytes(20_000, seed: 70)])
            let manifest = Counter(), config = Counter(), layer = Counter()
            reg.setHook { r in
                if r.path.contains("/manifests/") && manifest.next() == 0 { return .json(500, "{}") }
                if r.path.hasSuffix(image.config.digest.description) && config.next() == 0 { return .json(502, "{}") }
                if r.path.hasSuffix(image.layers[0].digest.description) && layer.next() < 2 { return .json(503, "{}") }
                return nil
            }
            let ref = try ImageReference(parsing: "\(reg.host)/library/app:1")
            let resolved = try await client.resolveImage(ref, platform: nil)
            try await client.fetchBlobs(ref, resolved.manifest.layers, into: dir.path, progress: nil)
            #expect(sha(contents(dir.sub(image.layers[0].digest.description))) == image.layers[0].digest)
            #expect(reg.server.requests(containing: "/manifests/").count == 2)
            #expect(reg.server.requests(containing: image.config.digest.description).count == 2)
            #expect(reg.server.requests(containing: image.layers[0].digest.description).count == 3)
        }
    }

    @Test func persistentServerErrorIsOneLineAfterBoundedAttempts() async throws {
        try await withRegistry(maxAttempts: 3) { reg, client, dir in
            let image = reg.putImage(repo: "app", tag: "latest", layers: [testBytes(1_000, seed: 71)])
            reg.setHook { r in r.path.contains("/blobs/sha256") ? .json(500, "{}") : nil }
            await expectFailure("server error from \(reg.host): HTTP 500 after 3 attempts") {
                try await client.fetchBlobs(ImageReference(parsing: "\(reg.host)/app"), image.layers, into: dir.path, progress: nil)
            }
            #expect(reg.server.requests(containing: "/blobs/").count == 3)
            #expect(files(in: dir.path).isEmpty, "nothing kept: \(files(in: dir.path))")
        }
    }

    @Test func notImplementedIsNotRetried() async throws {
        try await withRegistry { reg, client, _ in
            reg.setHook { r in r.path.contains("/manifests/") ? .json(501, "{}") : nil }
            await expectFailure("unexpected HTTP 501") {
                _ = try await client.resolveImage(ImageReference(parsing: "\(reg.host)/app"), platform: nil)
            }
            #expect(reg.server.requests(containing: "/manifests/").count == 1)
        }
    }

    @Test func retryAfterAsHTTPDate() async throws {
        let now = Date(timeIntervalSince1970: 1_700_000_000)
        #expect(parseRetryAfter("Tue, 14 Nov 2023 22:13:30 GMT", now: now) == 10)
        #expect(parseRetryAfter("Tue, 14 Nov 2023 22:13:00 GMT", now: now) == 0)  // in the past
        #expect(parseRetryAfter("soon", now: now) == nil)
        try await withRegistry { reg, client, _ in
            _ = reg.putImage(repo: "app", tag: "latest", layers: [testBytes(100, seed: 72)])
            let count = Counter()
            reg.setHook { r in
                r.path.contains("/manifests/") && count.next() == 0
                    ? .json(429, "{}", [("Retry-After", "Wed, 21 Oct 2015 07:28:00 GMT")]) : nil
            }
            _ = try await client.resolveImage(ImageReference(parsing: "\(reg.host)/app"), platform: nil)
            #expect(reg.server.requests(containing: "/manifests/").count == 2)
        }
    }

    @Test func connectionLostWhileReadingManifestOrConfigIsRetried() async throws {
        try await withRegistry { reg, client, _ in
            let image = reg.putImage(repo: "app", tag: "latest", layers: [testBytes(100, seed: 73)])
            let manifest = Counter(), config = Counter()
            reg.setHook { r in
                if r.path.contains("/manifests/") && manifest.next() == 0 {
                    guard case .respond(let s, let h, let body) = reg.routeWithoutHook(r) else { return nil }
                    return .truncate(status: s, headers: h, body: body, sendBytes: body.count / 2)
                }
                if r.path.hasSuffix(image.config.digest.description) && config.next() == 0 {
                    guard case .respond(let s, let h, let body) = reg.routeWithoutHook(r) else { return nil }
                    return .truncate(status: s, headers: h, body: body, sendBytes: body.count / 2)
                }
                return nil
            }
            let resolved = try await client.resolveImage(ImageReference(parsing: "\(reg.host)/app"), platform: nil)
            #expect(resolved.manifestDigest == image.manifest.digest)
            #expect(reg.server.requests(containing: "/manifests/").count == 2)
            #expect(reg.server.requests(containing: image.config.digest.description).count == 2)
        }
    }

    @Test func malformedDigestInManifestIsRefused() async throws {
        try await withRegistry { reg, client, _ in
            let cfg = reg.putBlob(Array("{}".utf8))
            for bad in [
                "sha256:xyz", "sha256:../../../etc/passwd", "md5:0123456789abcdef0123456789abcdef",
                "sha256:" + String(repeating: "A", count: 64),
            ] {
                let body = """
                    {"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
                     "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"\(cfg.digest)","size":\(cfg.size)},
                     "layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"\(bad)","size":10}]}
                    """
                _ = reg.putManifest(
                    repo: "app", reference: "bad", bytes: Array(body.utf8), contentType: "application/vnd.oci.image.manifest.v1+json")
                await expectFailure("invalid manifest") {
                    _ = try await client.resolveImage(ImageReference(parsing: "\(reg.host)/app:bad"), platform: nil)
                }
            }
            #expect(reg.server.requests(containing: "/blobs/").isEmpty)
        }
    }

    @Test func missingRepositoryReportedAsManifestUnknownIsARepositoryNotFound() async throws {
        try await withRegistry { reg, client, _ in
            _ = reg.putImage(repo: "library/app", tag: "1", layers: [testBytes(10, seed: 76)])
            // docker-registry 2.8 answers MANIFEST_UNKNOWN for a repository it does not have.
            reg.setHook { r in
                r.path.contains("/manifests/") && !r.path.hasPrefix("/v2/library/app/")
                    ? .json(404, #"{"errors":[{"code":"MANIFEST_UNKNOWN"}]}"#) : nil
            }
            await expectFailure("repository not found: \(reg.host)/library/nosuch") {
                _ = try await client.resolveImage(ImageReference(parsing: "\(reg.host)/library/nosuch"), platform: nil)
            }
            await expectFailure("tag not found: \(reg.host)/library/app:2") {
                _ = try await client.resolveImage(ImageReference(parsing: "\(reg.host)/library/app:2"), platform: nil)
            }
        }
    }

    @Test func plainHTTPToRemoteRegistryNeedsInsecure() async throws {
        let client = try RegistryClient(options: RegistryOptions(registryURL: "http://registry.example.invalid:5000"))
        await expectFailure("refusing plain http to registry.example.invalid:5000") {
            _ = try await client.resolveImage(ImageReference(parsing: "library/app"), platform: nil)
        }
        await client.shutdown()
        // Loopback stays allowed over http (the fixtures, a port-forwarded registry).
        try await withRegistry { reg, _, _ in
            _ = reg.putImage(repo: "library/app", tag: "latest", layers: [testBytes(10, seed: 74)])
            let local = try RegistryClient(options: RegistryOptions(registryURL: reg.server.base))
            _ = try await local.resolveImage(ImageReference(parsing: "library/app"), platform: nil)
            await local.shutdown()
        }
    }
}

/// Without working locks each puller writes a file of its own and publishes without replacing.
@Suite struct LocklessDownloadTests {
    @Test func leftoverIsTakenOverAndParkedBack() throws {
        let dir = try TemporaryDirectory()
        let final = dir.sub("sha256:" + String(repeating: "a", count: 64))
        let shared = final + ".partial"
        _ = FileManager.default.createFile(atPath: shared, contents: Data(repeating: 7, count: 1234))
        let file = try #require(try IngestSession.openPrivate(shared, final: final, directory: dir.path, size: 5000))
        #expect(file.path != shared && file.path.hasSuffix(".partial"))
        #expect(!FileManager.default.fileExists(atPath: shared), "the leftover was renamed to a private name")
        #expect(try file.currentSize() == 1234)
        // A second puller finds nothing to take over: it starts empty, on its own file.
        let other = try #require(try IngestSession.openPrivate(shared, final: final, directory: dir.path, size: 5000))
        #expect(other.path != file.path)
        #expect(try other.currentSize() == 0)
        other.close()  // empty: removed, not parked
        file.close()  // unfinished: parked back for a resume
        #expect(contents(shared)?.count == 1234)
        #expect(files(in: dir.path) == [(shared as NSString).lastPathComponent])
    }

    @Test func parkingNeverReplacesAnotherLeftover() throws {
        let dir = try TemporaryDirectory()
        let final = dir.sub("sha256:" + String(repeating: "b", count: 64))
        let shared = final + ".partial"
        let file = try #require(try IngestSession.openPrivate(shared, final: final, directory: dir.path, size: 100))
        try [UInt8](repeating: 1, count: 10).withUnsafeBytes { try file.write($0, at: 0) }
        _ = FileManager.default.createFile(atPath: shared, contents: Data(repeating: 2, count: 50))
        file.close()
        #expect(contents(shared) == [UInt8](repeating: 2, count: 50))
        #expect(files(in: dir.path).count == 1)
    }

    @Test func publicationNeverReplacesAPublishedBlob() throws {
        let dir = try TemporaryDirectory()
        let target = dir.sub("blob"), source = dir.sub("mine")
        _ = FileManager.default.createFile(atPath: target, contents: Data([1, 2, 3]))
        _ = FileManager.default.createFile(atPath: source, contents: Data([4, 5, 6]))
        #expect(try Publish.renameNoReplace(source, to: target) == false)
        #expect(contents(target) == [1, 2, 3])
        #expect(!FileManager.default.fileExists(atPath: source))
        _ = FileManager.default.createFile(atPath: source, contents: Data([7]))
        #expect(try Publish.renameNoReplace(source, to: dir.sub("new")) == true)
        #expect(contents(dir.sub("new")) == [7])
    }

    @Test func aFinalOfTheWrongSizeIsReplacedByAVerifiedDownload() async throws {
        try await withRegistry { reg, client, dir in
            let bytes = testBytes(9_000, seed: 75)
            let desc = reg.putBlob(bytes)
            _ = FileManager.default.createFile(atPath: dir.sub(desc.digest.description), contents: Data(bytes.prefix(100)))
            try await client.fetchBlobs(ImageReference(parsing: "\(reg.host)/x"), [desc], into: dir.path, progress: nil)
            #expect(sha(contents(dir.sub(desc.digest.description))) == desc.digest)
        }
    }
}

/// Proxies from the environment, as curl reads them for the Python udocker.
@Suite struct ProxyTests {
    @Test func environmentSelection() throws {
        let env = [
            "https_proxy": "http://p1:3128", "HTTPS_PROXY": "http://ignored:1", "http_proxy": "http://p2:8080",
            "HTTP_PROXY": "http://never:1", "no_proxy": "localhost, .internal.example,registry.site:5000,10.1.2.3",
        ]
        let p = ProxySettings(explicit: nil, environment: env)
        #expect(p.proxy(for: Origin("https://quay.io")!) == "http://p1:3128")
        #expect(p.proxy(for: Origin("http://quay.io")!) == "http://p2:8080")
        #expect(p.proxy(for: Origin("https://a.internal.example")!) == nil)
        #expect(p.proxy(for: Origin("https://internal.example")!) == nil)
        #expect(p.proxy(for: Origin("https://registry.site:5000")!) == nil)
        #expect(p.proxy(for: Origin("https://registry.site")!) == "http://p1:3128")  // other port
        #expect(p.proxy(for: Origin("http://10.1.2.3:5000")!) == nil)
        #expect(p.proxy(for: Origin("https://notinternal.example")!) == "http://p1:3128")
        let upper = ProxySettings(
            explicit: nil, environment: ["HTTPS_PROXY": "http://up:1", "HTTP_PROXY": "http://never:1", "NO_PROXY": "*"])
        #expect(upper.https == "http://up:1" && upper.http == nil)
        #expect(upper.proxy(for: Origin("https://quay.io")!) == nil)
        let explicit = ProxySettings(explicit: "socks5://s:1080", environment: env)
        #expect(explicit.proxy(for: Origin("http://quay.io")!) == "socks5://s:1080")
        #expect(explicit.proxy(for: Origin("https://x.internal.example")!) == nil)
    }

    @Test(.enabled(if: ConnectProxy.available, "needs /usr/bin/python3 for the proxy"))
    func httpProxyFromEnvironmentCarriesThePull() async throws {
        try await withRegistry { reg, _, dir in
            let image = reg.putImage(repo: "library/app", tag: "latest", layers: [testBytes(5_000, seed: 80)])
            let proxy = try await ConnectProxy.start(in: dir.path)
            defer { proxy.stop() }
            let proxyPort = proxy.port
            var options = RegistryOptions(retryBaseDelay: 0.05)
            options.environment = ["http_proxy": "http://127.0.0.1:\(proxyPort)", "HTTP_PROXY": "http://127.0.0.1:1"]
            let client = try RegistryClient(options: options)
            let ref = try ImageReference(parsing: "\(reg.host)/library/app")
            let resolved = try await client.resolveImage(ref, platform: nil)
            let blobs = dir.sub("blobs")
            try FileManager.default.createDirectory(atPath: blobs, withIntermediateDirectories: true)
            try await client.fetchBlobs(ref, resolved.manifest.layers, into: blobs, progress: nil)
            #expect(sha(contents("\(blobs)/\(image.layers[0].digest)")) == image.layers[0].digest)
            await client.shutdown()
            let tunnels = proxy.requestLines
            #expect(tunnels.contains("CONNECT \(reg.host) "), "the pull did not go through the proxy: \(tunnels)")
            // no_proxy: straight to the registry.
            options.environment = ["http_proxy": "http://127.0.0.1:\(proxyPort)", "no_proxy": "127.0.0.1"]
            let direct = try RegistryClient(options: options)
            _ = try await direct.resolveImage(ref, platform: nil)
            await direct.shutdown()
            #expect(proxy.requestLines == tunnels, "no_proxy host went through the proxy")
        }
    }

    @Test func tlsFailuresInWords() {
        let untrusted = RegistryClient.describeTLS(
            "handshakefailed(niossl.boringsslerror.sslerror([error: 268435581 error:1000007d:ssl routines:openssl_internal:certificate_verify_failed]))"
        )
        #expect(untrusted?.contains("not trusted") == true && untrusted?.contains("SSL_CERT_FILE") == true)
        #expect(untrusted?.contains("boringssl") == false)
        #expect(
            RegistryClient.describeTLS("sslerror(error:100000f7:ssl routines:openssl_internal:wrong_version_number)")?.contains(
                "does not speak TLS") == true)
        #expect(RegistryClient.describeTLS("connection refused") == nil)
    }
}

/// `search`: the registry catalog with Link pagination; Docker Hub's result fields.
@Suite struct SearchTests {
    @Test func catalogFollowsPagesAndFilters() async throws {
        try await withRegistry { reg, client, _ in
            for name in ["library/busybox", "library/debian", "tools/busybox-extra", "zz/other"] {
                _ = reg.putImage(repo: name, tag: "latest", layers: [testBytes(10, seed: 81)])
            }
            reg.setHook { r in
                // pages of 2, as `n=2` would give
                guard r.path == "/v2/_catalog", r.query["n"] == "1000" else { return nil }
                var inner = r; inner.uri = "/v2/_catalog?n=2"
                return reg.routeWithoutHook(inner)
            }
            let found = try await client.searchCatalog("busy", registry: reg.server.base)
            #expect(found == ["library/busybox", "tools/busybox-extra"])
            #expect(reg.server.requests(matching: "/v2/_catalog").count == 2)
            #expect(try await client.searchCatalog("", registry: reg.server.base).count == 4)
        }
    }

    @Test func dockerHubResultFields() {
        let r = RegistryClient.searchResult([
            "repo_name": "library/debian", "is_official": true,
            "short_description": "Debian is\na distro\u{7}", "star_count": 5000,
        ])
        #expect(r == SearchResult(name: "library/debian", official: true, description: "Debian is", stars: "5000"))
        #expect(RegistryClient.isDockerHubIndex("https://hub.docker.com") && RegistryClient.isDockerHubIndex("index.docker.io"))
        #expect(!RegistryClient.isDockerHubIndex("http://127.0.0.1:5000"))
    }
}

/// A full disk during a pull: one line naming the lack of space, no partial left behind.
@Suite struct DiskFullTests {
    static var canMount: Bool { geteuid() == 0 && FileManager.default.isExecutableFile(atPath: "/bin/mount") }

    @Test(.enabled(if: canMount, "needs root to mount a small tmpfs"))
    func noSpaceDropsThePartialAndSaysSo() async throws {
        let dir = try TemporaryDirectory()
        let small = dir.sub("small")
        try FileManager.default.createDirectory(atPath: small, withIntermediateDirectories: true)
        func run(_ args: [String]) throws -> Int32 {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: args[0])
            p.arguments = Array(args.dropFirst())
            try p.run(); p.waitUntilExit()
            return p.terminationStatus
        }
        try #require(try run(["/bin/mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", small]) == 0, "mount tmpfs failed")
        defer { _ = try? run(["/bin/umount", small]) }
        try await withRegistry { reg, client, _ in
            let desc = reg.putBlob(testBytes(1 << 20, seed: 90))
            await expectFailure("no space left on device in \(small)") {
                try await client.fetchBlobs(ImageReference(parsing: "\(reg.host)/x"), [desc], into: small, progress: nil)
            }
            #expect(files(in: small).isEmpty, "left behind: \(files(in: small))")
        }
    }
}
