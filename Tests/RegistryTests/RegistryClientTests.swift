import Foundation
import OCI
import TestSupport
import Testing
@testable import Registry

// MARK: helpers

func makeClient(
    credentials: CredentialStore = CredentialStore(entries: [:]), maxAttempts: Int = 4,
    parallelism: Int = 4
) throws -> RegistryClient {
    try RegistryClient(
        options: RegistryOptions(
            parallelism: parallelism, credentials: credentials,
            maxAttempts: maxAttempts, retryBaseDelay: 0.05, maxRetryDelay: 5))
}

/// Runs `body` with a fresh fake registry, a client and a temporary directory, and tears them down.
func withRegistry(
    credentials: CredentialStore = CredentialStore(entries: [:]), maxAttempts: Int = 4,
    parallelism: Int = 4,
    _ body: (FakeRegistry, RegistryClient, TemporaryDirectory) async throws -> Void
) async throws {
    let reg = try await FakeRegistry()
    let client = try makeClient(credentials: credentials, maxAttempts: maxAttempts, parallelism: parallelism)
    let dir = try TemporaryDirectory()
    do { try await body(reg, client, dir) } catch {
        await client.shutdown(); await reg.stop(); throw error
    }
    await client.shutdown()
    await reg.stop()
}

/// Expects `body` to throw an error whose description contains `part`; returns the error.
@discardableResult
func expectFailure(
    _ part: String, sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () async throws -> Void
) async -> Error? {
    do {
        try await body()
        Issue.record("expected an error containing '\(part)'", sourceLocation: sourceLocation)
        return nil
    } catch {
        let text = "\(error)"
        #expect(text.contains(part), "'\(text)' lacks '\(part)'", sourceLocation: sourceLocation)
        #expect(!text.contains("\n"), sourceLocation: sourceLocation)
        return error
    }
}

func files(in dir: String) -> [String] {
    ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted()
}

func contents(_ path: String) -> [UInt8]? { FileManager.default.contents(atPath: path).map { Array($0) } }

/// Compare files by digest so a failure prints two hashes, not megabytes of bytes.
func sha(_ bytes: [UInt8]?) -> Digest? { bytes.map { Digest.sha256(of: $0) } }

func b64(_ s: String) -> String { Data(s.utf8).base64EncodedString() }

// MARK: pull flows

@Suite struct PullFlowTests {
    @Test func anonymousPullStoresVerifiedBlobs() async throws {
        try await withRegistry { reg, client, dir in
            let layers = [testBytes(10_000, seed: 1), testBytes(3_000, seed: 2)]
            let image = reg.putImage(repo: "library/app", tag: "1.0", layers: layers)
            let ref = try ImageReference(parsing: "\(reg.host)/library/app:1.0")
            let resolved = try await client.resolveImage(ref, platform: nil)
            #expect(resolved.manifestDigest == image.manifest.digest)
            #expect(resolved.manifest.layers == image.layers)
            #expect(resolved.config.architecture == "amd64")
            #expect(resolved.config.config?.cmd == ["/bin/sh"])
            #expect(Digest.sha256(of: resolved.configBytes) == image.config.digest)
            #expect(Digest.sha256(of: resolved.manifestBytes) == image.manifest.digest)

            try await client.fetchBlobs(ref, resolved.blobs, into: dir.path, progress: nil)
            let expected = ([image.config] + image.layers).map(\.digest.description).sorted()
            #expect(files(in: dir.path) == expected)
            #expect(sha(contents(dir.sub(image.layers[0].digest.description))) == Digest.sha256(of: layers[0]))
            #expect(sha(contents(dir.sub(image.layers[1].digest.description))) == Digest.sha256(of: layers[1]))
            // The manifest request asked for every manifest type.
            let accept = reg.server.requests(containing: "/manifests/").first?.header("Accept") ?? ""
            for t in MediaType.manifestAccept { #expect(accept.contains(t)) }
        }
    }

    @Test func presentFileIsNotFetchedAgain() async throws {
        try await withRegistry { reg, client, dir in
            let image = reg.putImage(repo: "app", tag: "latest", layers: [testBytes(5000, seed: 3)])
            let ref = try ImageReference(parsing: "\(reg.host)/app")
            try await client.fetchBlobs(ref, image.layers, into: dir.path, progress: nil)
            let before = reg.server.requests(containing: "/blobs/").count
            #expect(before == 1)
            let messages = MessageLog()
            try await client.fetchBlobs(ref, image.layers + image.layers, into: dir.path, progress: { messages.add("\($0)") })
            #expect(reg.server.requests(containing: "/blobs/").count == before)
            #expect(messages.all.contains { $0.contains("already present") })
        }
    }

    @Test func pinnedDigestIsVerified() async throws {
        try await withRegistry { reg, client, _ in
            let image = reg.putImage(repo: "app", tag: "v1", layers: [testBytes(100, seed: 4)])
            let ok = try ImageReference(parsing: "\(reg.host)/app@\(image.manifest.digest)")
            #expect(try await client.resolveImage(ok, platform: nil).manifestDigest == image.manifest.digest)
            // A registry answering a digest request with other bytes is caught.
            let other = reg.putImage(repo: "app", tag: "v2", layers: [testBytes(100, seed: 5)])
            let liar = Digest.sha256(of: Array("not this one".utf8))
            reg.setHook { r in
                r.path.hasSuffix("/manifests/\(liar)")
                    ? reg.route(.init(method: "GET", uri: "/v2/app/manifests/\(other.manifest.digest)", headers: [])) : nil
            }
            await expectFailure("digest mismatch for \(liar): got \(other.manifest.digest)") {
                _ = try await client.resolveImage(ImageReference(parsing: "\(reg.host)/app@\(liar)"), platform: nil)
            }
        }
    }

    @Test func notFoundMessagesAndNoRetry() async throws {
        try await withRegistry { reg, client, dir in
            let image = reg.putImage(repo: "library/app", tag: "1", layers: [testBytes(10, seed: 6)])
            await expectFailure("repository not found: \(reg.host)/library/nosuch") {
                _ = try await client.resolveImage(ImageReference(parsing: "\(reg.host)/library/nosuch"), platform: nil)
            }
            await expectFailure("tag not found: \(reg.host)/library/app:nosuch") {
                _ = try await client.resolveImage(ImageReference(parsing: "\(reg.host)/library/app:nosuch"), platform: nil)
            }
            #expect(reg.server.requests(containing: "/manifests/").count == 2)  // 404 never retried
            let missing = Descriptor(mediaType: MediaType.ociLayerGzip, digest: Digest.sha256(of: [1, 2, 3]), size: 3)
            await expectFailure("blob not found: \(missing.digest)") {
                try await client.fetchBlobs(ImageReference(parsing: "\(reg.host)/library/app"), [missing], into: dir.path, progress: nil)
            }
            #expect(reg.server.requests(containing: "/blobs/").count == 1)
            #expect(files(in: dir.path).isEmpty)
            _ = image
        }
    }

    @Test func schema1IsRefused() async throws {
        try await withRegistry { reg, client, _ in
            let body =
                #"{"schemaVersion":1,"name":"old","tag":"latest","architecture":"amd64","fsLayers":[{"blobSum":"sha256:\#(String(repeating: "0", count: 64))"}],"history":[]}"#
            reg.putManifest(repo: "old", reference: "latest", bytes: Array(body.utf8), contentType: MediaType.dockerManifestV1Signed)
            let ref = try ImageReference(parsing: "\(reg.host)/old")
            await expectFailure("schema 1 manifests are not supported (\(reg.host)/old:latest)") {
                _ = try await client.resolveImage(ref, platform: nil)
            }
            // Served as application/json, recognised by shape.
            reg.putManifest(repo: "old", reference: "json", bytes: Array(body.utf8), contentType: "application/json")
            await expectFailure("schema 1") {
                _ = try await client.resolveImage(ImageReference(parsing: "\(reg.host)/old:json"), platform: nil)
            }
            // inspect still shows the raw document.
            #expect(try await client.fetchManifestDocument(ref, platform: nil) == Array(body.utf8))
        }
    }

    @Test func oversizedManifestAndConfusedDocument() async throws {
        try await withRegistry { reg, client, _ in
            let huge = Array(#"{"schemaVersion":2,"pad":""#.utf8) + [UInt8](repeating: 0x61, count: 4 << 20) + Array(#""}"#.utf8)
            reg.putManifest(repo: "big", reference: "latest", bytes: huge, contentType: MediaType.ociManifest)
            await expectFailure("larger than the 4194304-byte limit") {
                _ = try await client.resolveImage(ImageReference(parsing: "\(reg.host)/big"), platform: nil)
            }
            let d = reg.putBlob([1])
            let both = Index(manifests: [d])
            var json = try JSONSerialization.jsonObject(with: JSONEncoder.sorted.encode(both)) as! [String: Any]
            json["layers"] = []
            let bytes = Array(try JSONSerialization.data(withJSONObject: json))
            reg.putManifest(repo: "confused", reference: "latest", bytes: bytes, contentType: MediaType.ociIndex)
            await expectFailure("has both 'manifests' and 'layers'") {
                _ = try await client.resolveImage(ImageReference(parsing: "\(reg.host)/confused"), platform: nil)
            }
        }
    }

    @Test func defaultRegistryURLIsUsedForNamesWithoutHost() async throws {
        let reg = try await FakeRegistry()
        let image = reg.putImage(repo: "app", tag: "2", layers: [testBytes(10, seed: 7)])
        let client = try RegistryClient(options: RegistryOptions(registryURL: reg.server.base))
        let ref = try ImageReference(parsing: "app:2")
        #expect(ref.localName == "app")
        #expect(try await client.resolveImage(ref, platform: nil).manifestDigest == image.manifest.digest)
        // A one-word name means library/<name> first (as on Docker Hub); the registry has no
        // such repository, so the name as typed is used, and kept for the blobs.
        #expect(reg.server.requests(containing: "/manifests/").map(\.path) == ["/v2/library/app/manifests/2", "/v2/app/manifests/2"])
        let dir = try TemporaryDirectory()
        try await client.fetchBlobs(ref, image.layers, into: dir.path, progress: nil)
        #expect(reg.server.requests(containing: "/blobs/").allSatisfy { $0.path.hasPrefix("/v2/app/blobs/") })
        await client.shutdown(); await reg.stop()
    }

    @Test func shortNameUnderConfiguredRegistryMeansLibrary() async throws {
        let reg = try await FakeRegistry()
        let image = reg.putImage(repo: "library/busybox", tag: "latest", layers: [testBytes(10, seed: 8)])
        let client = try RegistryClient(options: RegistryOptions(registryURL: reg.server.base))
        let ref = try ImageReference(parsing: "busybox")
        #expect(try await client.resolveImage(ref, platform: nil).manifestDigest == image.manifest.digest)
        #expect(reg.server.requests(containing: "/manifests/").map(\.path) == ["/v2/library/busybox/manifests/latest"])
        #expect(try await client.listTags(ref) == ["latest"])
        await client.shutdown()
        // docker_registries: a host in the name is sent to the registry mapped to it.
        var options = RegistryOptions()
        options.registryMap = ["docker.io": reg.server.base]
        let mirrored = try RegistryClient(options: options)
        #expect(
            try await mirrored.resolveImage(ImageReference(parsing: "docker.io/busybox"), platform: nil).manifestDigest
                == image.manifest.digest)
        #expect(try await mirrored.resolveImage(ImageReference(parsing: "busybox"), platform: nil).manifestDigest == image.manifest.digest)
        await mirrored.shutdown(); await reg.stop()
    }

    @Test func tagListFollowsLinkPagination() async throws {
        try await withRegistry { reg, client, _ in
            reg.setHook { r in
                guard r.path == "/v2/app/tags/list" else { return nil }
                if r.query["last"] == "b" { return .json(200, #"{"name":"app","tags":["c"]}"#) }
                return .json(200, #"{"name":"app","tags":["a","b"]}"#, [("Link", #"</v2/app/tags/list?last=b&n=2>; rel="next""#)])
            }
            let tags = try await client.listTags(ImageReference(parsing: "\(reg.host)/app"))
            #expect(tags == ["a", "b", "c"])
        }
    }

    @Test func unreachableRegistry() async throws {
        let server = try await StubServer()
        let host = server.host
        await server.stop()
        let client = try makeClient(maxAttempts: 2)
        await expectFailure("registry unreachable: \(host): connection refused") {
            _ = try await client.resolveImage(ImageReference(parsing: "\(host)/x"), platform: nil)
        }
        await client.shutdown()
    }
}

// MARK: manifest lists

@Suite struct PlatformTests {
    func setUpMulti(_ reg: FakeRegistry) -> (amd: Descriptor, arm: Descriptor) {
        let amd = reg.putImage(repo: "multi", tag: nil, layers: [testBytes(50, seed: 10)], architecture: "amd64").manifest
        let arm = reg.putImage(repo: "multi", tag: nil, layers: [testBytes(50, seed: 11)], architecture: "arm64").manifest
        // An attestation entry (unknown platform) must be skipped, not offered.
        let att = Descriptor(
            mediaType: MediaType.ociManifest, digest: Digest.sha256(of: [9]), size: 1,
            annotations: ["vnd.docker.reference.type": "attestation-manifest"],
            platform: Platform(os: "unknown", architecture: "unknown"))
        let index = Index(mediaType: MediaType.ociIndex, manifests: [amd, arm, att])
        reg.putManifest(
            repo: "multi", reference: "latest", bytes: Array(try! JSONEncoder.sorted.encode(index)), contentType: MediaType.ociIndex)
        return (amd, arm)
    }

    @Test func selectsRequestedPlatform() async throws {
        try await withRegistry { reg, client, _ in
            let (amd, arm) = setUpMulti(reg)
            let ref = try ImageReference(parsing: "\(reg.host)/multi:latest")
            let a = try await client.resolveImage(ref, platform: Platform(os: "linux", architecture: "arm64"))
            #expect(a.manifestDigest == arm.digest)
            #expect(a.config.architecture == "arm64")
            #expect(a.indexBytes != nil)
            let b = try await client.resolveImage(ref, platform: Platform(os: "linux", architecture: "amd64"))
            #expect(b.manifestDigest == amd.digest)
            // inspect: raw index without a platform, the child with one.
            let raw = try await client.fetchManifestDocument(ref, platform: nil)
            #expect(try JSONDecoder().decode(Index.self, from: Data(raw)).manifests.count == 3)
            let child = try await client.fetchManifestDocument(ref, platform: Platform(os: "linux", architecture: "arm64"))
            #expect(Digest.sha256(of: child) == arm.digest)
        }
    }

    @Test func noMatchingPlatformListsAvailable() async throws {
        try await withRegistry { reg, client, _ in
            _ = setUpMulti(reg)
            let ref = try ImageReference(parsing: "\(reg.host)/multi:latest")
            await expectFailure("no image for platform linux/s390x in \(reg.host)/multi:latest (available: linux/amd64, linux/arm64)") {
                _ = try await client.resolveImage(ref, platform: Platform(os: "linux", architecture: "s390x"))
            }
        }
    }

    @Test func childManifestMustMatchIndexDigest() async throws {
        try await withRegistry { reg, client, _ in
            let (_, arm) = setUpMulti(reg)
            let other = reg.putImage(repo: "multi", tag: "other", layers: [testBytes(60, seed: 12)]).manifest
            reg.setHook { r in
                r.path.hasSuffix("/manifests/\(arm.digest)")
                    ? reg.route(.init(method: "GET", uri: "/v2/multi/manifests/\(other.digest)", headers: [])) : nil
            }
            await expectFailure("mismatch for \(arm.digest)") {
                _ = try await client.resolveImage(
                    ImageReference(parsing: "\(reg.host)/multi"), platform: Platform(os: "linux", architecture: "arm64"))
            }
        }
    }
}

// MARK: authentication

@Suite struct AuthTests {
    @Test(arguments: ["token", "access_token"])
    func bearerTokenIsFetchedOnceAndReused(field: String) async throws {
        let reg = try await FakeRegistry()
        let creds = CredentialStore(entries: ["http://\(reg.host)": b64("alice:secret")])
        let client = try makeClient(credentials: creds)
        let dir = try TemporaryDirectory()
        reg.setAuth(.bearer(basic: b64("alice:secret"), field: field))
        let image = reg.putImage(
            repo: "private/app", tag: "1", layers: [testBytes(2000, seed: 20), testBytes(3000, seed: 21), testBytes(100, seed: 22)])
        let ref = try ImageReference(parsing: "\(reg.host)/private/app:1")
        let resolved = try await client.resolveImage(ref, platform: nil)
        try await client.fetchBlobs(ref, resolved.blobs, into: dir.path, progress: nil)
        #expect(files(in: dir.path).count == 4)
        let tokenRequests = reg.server.requests(matching: "/token")
        #expect(tokenRequests.count == 1)
        #expect(tokenRequests.first?.header("Authorization") == "Basic \(b64("alice:secret"))")
        #expect(tokenRequests.first?.query["service"] == "fake")
        #expect(tokenRequests.first?.query["scope"] == "repository:x:pull")
        // After the first challenge every registry request carried the token.
        let v2 = reg.server.requests(matching: "/v2/")
        #expect(v2.first?.header("Authorization") == nil)
        #expect(v2.dropFirst().allSatisfy { $0.header("Authorization") == "Bearer tok1" })
        // The config is read once by resolveImage and once more by fetchBlobs.
        #expect(v2.filter { $0.path.contains("/blobs/") }.count == 5)
        _ = image
        await client.shutdown(); await reg.stop()
    }

    @Test func anonymousTokenWithoutCredentials() async throws {
        try await withRegistry { reg, client, _ in
            reg.setAuth(.bearer(basic: nil, field: "token"))
            reg.putImage(repo: "library/pub", tag: "latest", layers: [testBytes(10, seed: 23)])
            _ = try await client.resolveImage(ImageReference(parsing: "\(reg.host)/library/pub"), platform: nil)
            #expect(reg.server.requests(matching: "/token").first?.header("Authorization") == nil)
        }
    }

    @Test func wrongCredentialsAreRefused() async throws {
        let reg = try await FakeRegistry()
        let client = try makeClient(credentials: CredentialStore(entries: [reg.host: b64("alice:wrong")]))
        reg.setAuth(.bearer(basic: b64("alice:secret"), field: "token"))
        reg.putImage(repo: "p", tag: "latest", layers: [testBytes(10, seed: 24)])
        await expectFailure("authentication refused by \(reg.host) (HTTP 401): credentials rejected") {
            _ = try await client.resolveImage(ImageReference(parsing: "\(reg.host)/p"), platform: nil)
        }
        await client.shutdown(); await reg.stop()
    }

    @Test func expiredTokenIsRefreshedOnceThenFails() async throws {
        try await withRegistry { reg, client, dir in
            reg.setAuth(.bearer(basic: nil, field: "token"))
            let image = reg.putImage(repo: "app", tag: "latest", layers: [testBytes(1000, seed: 25)])
            let ref = try ImageReference(parsing: "\(reg.host)/app")
            let resolved = try await client.resolveImage(ref, platform: nil)
            #expect(reg.tokensIssued == 1)
            reg.revokeTokens()  // the token expires mid-pull
            try await client.fetchBlobs(ref, image.layers, into: dir.path, progress: nil)
            #expect(reg.tokensIssued == 2)
            #expect(contents(dir.sub(image.layers[0].digest.description)) != nil)
            // A registry that refuses every token: one refresh, then a clear failure, no loop.
            reg.setHook { r in
                r.path.hasPrefix("/v2/")
                    ? .json(
                        401, "{}", [("WWW-Authenticate", #"Bearer realm="\#(reg.server.base)/token",service="fake",error="invalid_token""#)]
                    ) : nil
            }
            await expectFailure("authentication refused by \(reg.host) (HTTP 401): invalid_token") {
                try await client.fetchBlobs(ref, [resolved.manifest.config], into: dir.path, progress: nil)
            }
            #expect(reg.tokensIssued == 3)
        }
    }

    @Test func basicAuthChallenge() async throws {
        let reg = try await FakeRegistry()
        reg.setAuth(.basic(b64("bob:pw")))
        reg.putImage(repo: "b", tag: "latest", layers: [testBytes(10, seed: 26)])
        let ref = try ImageReference(parsing: "\(reg.host)/b")
        let withCreds = try makeClient(credentials: CredentialStore(entries: ["http://\(reg.host)": b64("bob:pw")]))
        _ = try await withCreds.resolveImage(ref, platform: nil)
        #expect(reg.server.requests(matching: "/v2/").last?.header("Authorization") == "Basic \(b64("bob:pw"))")
        await withCreds.shutdown()

        let without = try makeClient()
        await expectFailure("\(reg.host) requires credentials: no credentials stored") {
            _ = try await without.resolveImage(ref, platform: nil)
        }
        await without.shutdown()
        await reg.stop()
    }

    @Test func basicIsNeverSentOverPlainHTTPToRemoteHosts() async throws {
        let client = try makeClient(credentials: CredentialStore(entries: ["registry.example": b64("u:p")]))
        let endpoint = Endpoint(origin: Origin("http://registry.example")!, repository: "x", display: "x")
        await expectFailure("refusing to send credentials over plain http") {
            // Drive the challenge answer directly: no network needed.
            try await client.answer(AuthChallenge(#"Basic realm="r""#)!, endpoint: endpoint)
        }
        await client.shutdown()
    }
}

// MARK: blob faults

@Suite struct BlobFaultTests {
    @Test func flippedByteIsRejected() async throws {
        try await withRegistry { reg, client, dir in
            var bytes = testBytes(20_000, seed: 30)
            let desc = reg.putBlob(bytes)
            bytes[12_345] ^= 0x01
            let served = bytes
            reg.setHook { r in r.path.contains("/blobs/") ? FakeRegistry.serve(served, range: r.header("Range")) : nil }
            await expectFailure("digest mismatch for \(desc.digest): got \(Digest.sha256(of: served))") {
                try await client.fetchBlobs(ImageReference(parsing: "\(reg.host)/x"), [desc], into: dir.path, progress: nil)
            }
            #expect(files(in: dir.path).isEmpty)  // neither the final name nor a .partial
        }
    }

    @Test(arguments: [-1, 1, -5000])
    func bodyLengthDifferentFromDescriptorIsRejected(delta: Int) async throws {
        try await withRegistry { reg, client, dir in
            let bytes = testBytes(10_000, seed: 31)
            let desc = reg.putBlob(bytes)
            let served = delta < 0 ? Array(bytes.prefix(bytes.count + delta)) : bytes + testBytes(delta, seed: 32)
            reg.setHook { r in r.path.contains("/blobs/") ? .respond(status: 200, headers: [], body: served) : nil }
            await expectFailure("size mismatch for \(desc.digest): expected 10000 bytes") {
                try await client.fetchBlobs(ImageReference(parsing: "\(reg.host)/x"), [desc], into: dir.path, progress: nil)
            }
            #expect(files(in: dir.path).isEmpty)
        }
    }

    @Test func longerBodyWithoutContentLengthIsRejected() async throws {
        // No Content-Length up front: detected while streaming, at most size bytes written.
        try await withRegistry { reg, client, dir in
            let bytes = testBytes(4_000, seed: 33)
            let desc = reg.putBlob(bytes)
            reg.setHook { r in
                r.path.contains("/blobs/") ? .respond(status: 200, headers: [("Transfer-Encoding", "chunked")], body: bytes + [0]) : nil
            }
            await expectFailure("size mismatch for \(desc.digest)") {
                try await client.fetchBlobs(ImageReference(parsing: "\(reg.host)/x"), [desc], into: dir.path, progress: nil)
            }
            #expect(files(in: dir.path).isEmpty)
        }
    }

    @Test func connectionClosedHalfwayResumesWithRange() async throws {
        try await withRegistry { reg, client, dir in
            let bytes = testBytes(200_000, seed: 34)
            let desc = reg.putBlob(bytes)
            let first = Counter()
            reg.setHook { r in
                guard r.path.contains("/blobs/"), first.next() == 0 else { return nil }
                return .truncate(status: 200, headers: [], body: bytes, sendBytes: bytes.count / 2)
            }
            try await client.fetchBlobs(ImageReference(parsing: "\(reg.host)/x"), [desc], into: dir.path, progress: nil)
            #expect(sha(contents(dir.sub(desc.digest.description))) == Digest.sha256(of: bytes))
            let blobRequests = reg.server.requests(containing: "/blobs/")
            #expect(blobRequests.count == 2)
            #expect(blobRequests[0].header("Range") == nil)
            let range = try #require(blobRequests[1].header("Range"))
            let offset = try #require(Int(range.dropFirst("bytes=".count).dropLast()))
            #expect(range.hasPrefix("bytes=") && range.hasSuffix("-"))
            #expect(offset > 0 && offset <= bytes.count / 2)
            #expect(files(in: dir.path) == [desc.digest.description])
        }
    }

    @Test func leftoverPartialResumes() async throws {
        try await withRegistry { reg, client, dir in
            let bytes = testBytes(50_000, seed: 35)
            let desc = reg.putBlob(bytes)
            _ = FileManager.default.createFile(atPath: dir.sub("\(desc.digest).partial"), contents: Data(bytes.prefix(20_000)))
            let messages = MessageLog()
            try await client.fetchBlobs(
                ImageReference(parsing: "\(reg.host)/x"), [desc], into: dir.path, progress: { messages.add("\($0)") })
            #expect(sha(contents(dir.sub(desc.digest.description))) == Digest.sha256(of: bytes))
            #expect(reg.server.requests(containing: "/blobs/").map { $0.header("Range") } == ["bytes=20000-"])
            #expect(messages.all.contains { $0.contains("resuming at 20000") })
        }
    }

    @Test func rangeIgnoredOrWrongRestartsFromZero() async throws {
        try await withRegistry { reg, client, dir in
            let bytes = testBytes(30_000, seed: 36)
            let a = reg.putBlob(bytes)
            let b = reg.putBlob(testBytes(30_000, seed: 37))
            let bBytes = testBytes(30_000, seed: 37)
            _ = FileManager.default.createFile(atPath: dir.sub("\(a.digest).partial"), contents: Data(bytes.prefix(10_000)))
            _ = FileManager.default.createFile(atPath: dir.sub("\(b.digest).partial"), contents: Data(bBytes.prefix(10_000)))
            reg.setHook { r in
                if r.path.hasSuffix("\(a.digest)") {  // ignores Range: 200 with everything
                    return .respond(status: 200, headers: [], body: bytes)
                }
                if r.path.hasSuffix("\(b.digest)"), r.header("Range") != nil {  // wrong Content-Range
                    return .respond(status: 206, headers: [("Content-Range", "bytes 0-29999/30000")], body: bBytes)
                }
                return nil
            }
            try await client.fetchBlobs(ImageReference(parsing: "\(reg.host)/x"), [a, b], into: dir.path, progress: nil)
            #expect(sha(contents(dir.sub(a.digest.description))) == Digest.sha256(of: bytes))
            #expect(sha(contents(dir.sub(b.digest.description))) == Digest.sha256(of: bBytes))
            #expect(reg.server.requests(containing: "\(a.digest)").count == 1)
            let bReqs = reg.server.requests(containing: "\(b.digest)")
            #expect(bReqs.map { $0.header("Range") } == ["bytes=10000-", nil])
        }
    }

    @Test func corruptPartialIsRestartedOnce() async throws {
        try await withRegistry { reg, client, dir in
            let bytes = testBytes(40_000, seed: 38)
            let desc = reg.putBlob(bytes)
            var bad = Array(bytes.prefix(15_000)); bad[10] ^= 0xff
            _ = FileManager.default.createFile(atPath: dir.sub("\(desc.digest).partial"), contents: Data(bad))
            try await client.fetchBlobs(ImageReference(parsing: "\(reg.host)/x"), [desc], into: dir.path, progress: nil)
            #expect(sha(contents(dir.sub(desc.digest.description))) == Digest.sha256(of: bytes))
            #expect(reg.server.requests(containing: "/blobs/").map { $0.header("Range") } == ["bytes=15000-", nil])
        }
    }

    @Test func rateLimitHonoursRetryAfter() async throws {
        try await withRegistry { reg, client, dir in
            let image = reg.putImage(repo: "app", tag: "latest", layers: [testBytes(100, seed: 39)])
            let count = Counter()
            reg.setHook { r in
                r.path.contains("/blobs/") && count.next() == 0 ? .json(429, "{}", [("Retry-After", "1")]) : nil
            }
            let start = Date()
            try await client.fetchBlobs(ImageReference(parsing: "\(reg.host)/app"), image.layers, into: dir.path, progress: nil)
            #expect(Date().timeIntervalSince(start) >= 0.95)
            #expect(reg.server.requests(containing: "/blobs/").count == 2)
        }
    }

    @Test func persistentRateLimitFailsAfterBoundedAttempts() async throws {
        try await withRegistry(maxAttempts: 3) { reg, client, _ in
            reg.setHook { r in r.path.contains("/manifests/") ? .json(429, "{}", [("Retry-After", "0")]) : nil }
            await expectFailure("rate limited by \(reg.host) after 3 attempts") {
                _ = try await client.resolveImage(ImageReference(parsing: "\(reg.host)/app"), platform: nil)
            }
            #expect(reg.server.requests(containing: "/manifests/").count == 3)
            reg.setHook { r in r.path.contains("/manifests/") ? .json(503, "{}") : nil }
            await expectFailure("server error from \(reg.host): HTTP 503 after 3 attempts") {
                _ = try await client.resolveImage(ImageReference(parsing: "\(reg.host)/app"), platform: nil)
            }
        }
    }

    @Test func redirectToAnotherHostDropsAuthorization() async throws {
        try await withRegistry { reg, client, dir in
            reg.setAuth(.bearer(basic: nil, field: "token"))
            let bytes = testBytes(5_000, seed: 40)
            let desc = reg.putBlob(bytes)
            let storage = try await StubServer { r in FakeRegistry.serve(bytes, range: r.header("Range")) }
            let sameHost = Counter()
            reg.setHook { r in
                guard r.path.contains("/blobs/"), r.header("Authorization") != nil else { return nil }
                // First a same-host hop (keeps the token), then off to the blob store.
                if sameHost.next() == 0 { return .status(307, [("Location", "/v2/x/blobs/\(desc.digest)?hop=1")]) }
                return .status(307, [("Location", "\(storage.base)/blob?sig=abc")])
            }
            try await client.fetchBlobs(ImageReference(parsing: "\(reg.host)/x"), [desc], into: dir.path, progress: nil)
            #expect(sha(contents(dir.sub(desc.digest.description))) == Digest.sha256(of: bytes))
            let registryBlobGets = reg.server.requests(containing: "/blobs/")
            #expect(registryBlobGets.count == 3)  // 401, then the token-carrying GET, then the same-host hop
            #expect(registryBlobGets.dropFirst().allSatisfy { $0.header("Authorization") == "Bearer tok1" })
            #expect(storage.requests.count == 1)
            #expect(storage.requests.first?.header("Authorization") == nil)
            #expect(storage.requests.first?.path == "/blob")
            await storage.stop()
        }
    }

    @Test func tooManyRedirects() async throws {
        try await withRegistry { reg, client, dir in
            let desc = reg.putBlob([1, 2, 3])
            reg.setHook { r in r.path.contains("/blobs/") ? .status(302, [("Location", r.uri)]) : nil }
            await expectFailure("too many redirects") {
                try await client.fetchBlobs(ImageReference(parsing: "\(reg.host)/x"), [desc], into: dir.path, progress: nil)
            }
            #expect(reg.server.requests(containing: "/blobs/").count == 6)
        }
    }
}

// MARK: concurrency

@Suite struct ConcurrencyTests {
    @Test func blobsDownloadInParallel() async throws {
        try await withRegistry(parallelism: 4) { reg, client, dir in
            let blobs = (0..<6).map { reg.putBlob(testBytes(3_000, seed: UInt64(50 + $0))) }
            reg.setHook { r in
                guard r.path.contains("/blobs/") else { return nil }
                let served = reg.routeWithoutHook(r)
                return .delayed(milliseconds: 300, served)
            }
            try await client.fetchBlobs(ImageReference(parsing: "\(reg.host)/x"), blobs, into: dir.path, progress: nil)
            #expect(files(in: dir.path).count == 6)
            #expect(reg.server.maxInFlight >= 2)
            #expect(reg.server.maxInFlight <= 4)
        }
    }

    @Test func twoClientsFetchingTheSameBlobDoNotCorruptIt() async throws {
        try await withRegistry { reg, client, dir in
            let bytes = testBytes(100_000, seed: 60)
            let desc = reg.putBlob(bytes)
            reg.setHook { r in r.path.contains("/blobs/") ? .delayed(milliseconds: 200, reg.routeWithoutHook(r)) : nil }
            let other = try makeClient()
            let ref = try ImageReference(parsing: "\(reg.host)/x")
            async let a: Void = client.fetchBlobs(ref, [desc], into: dir.path, progress: nil)
            async let b: Void = other.fetchBlobs(ref, [desc], into: dir.path, progress: nil)
            _ = try await (a, b)
            await other.shutdown()
            #expect(sha(contents(dir.sub(desc.digest.description))) == Digest.sha256(of: bytes))
            #expect(files(in: dir.path) == [desc.digest.description])
            #expect(reg.server.requests(containing: "/blobs/").count == 1)  // the second waited, then found it
        }
    }
}

// MARK: small test utilities

final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var n = 0
    /// Returns the current value, then increments.
    func next() -> Int {
        lock.withLock {
            defer { n += 1 }; return n
        }
    }
}

final class MessageLog: @unchecked Sendable {
    private let lock = NSLock()
    private var messages: [String] = []
    func add(_ m: String) { lock.withLock { messages.append(m) } }
    var all: [String] { lock.withLock { messages } }
}
