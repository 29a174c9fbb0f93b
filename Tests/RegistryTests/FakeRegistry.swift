import Foundation
import OCI
@testable import Registry

/// An in-memory registry served by a `StubServer`, with switches for authentication and hooks
/// for per-request faults.
final class FakeRegistry: @unchecked Sendable {
    enum Auth: Sendable {
        case none
        /// Bearer tokens from `/token`. `basic` (base64 user:pass) is required by the token
        /// endpoint when set; `field` is `token` or `access_token`.
        case bearer(basic: String?, field: String)
        /// Basic auth on the registry itself.
        case basic(String)
    }

    struct Document { var bytes: [UInt8]; var contentType: String }

    let server: StubServer
    private let lock = NSLock()
    private var manifests: [String: Document] = [:]  // "repo ref" → document
    private var blobs: [String: [UInt8]] = [:]  // digest → bytes
    private var auth: Auth = .none
    private var validTokens: Set<String> = []
    private var tokenCounter = 0
    /// Runs before normal routing; a non-nil reply wins.
    private var hook: (@Sendable (StubServer.Request) -> StubServer.Reply?)?
    var supportsRange = true

    var host: String { server.host }

    init(bindingTo address: String = "127.0.0.1") async throws {
        server = try await StubServer(bindingTo: address)
        server.setHandler { [unowned self] in self.route($0) }
    }

    func stop() async { await server.stop() }

    func setAuth(_ a: Auth) { lock.withLock { auth = a } }
    func setHook(_ h: (@Sendable (StubServer.Request) -> StubServer.Reply?)?) { lock.withLock { hook = h } }
    func revokeTokens() { lock.withLock { validTokens.removeAll() } }
    var tokensIssued: Int { lock.withLock { tokenCounter } }

    func putBlob(_ bytes: [UInt8]) -> Descriptor {
        let d = Digest.sha256(of: bytes)
        lock.withLock { blobs[d.description] = bytes }
        return Descriptor(mediaType: MediaType.ociLayerGzip, digest: d, size: Int64(bytes.count))
    }

    @discardableResult
    func putManifest(repo: String, reference: String?, bytes: [UInt8], contentType: String) -> Digest {
        let d = Digest.sha256(of: bytes)
        lock.withLock {
            manifests["\(repo) \(d)"] = Document(bytes: bytes, contentType: contentType)
            if let reference { manifests["\(repo) \(reference)"] = Document(bytes: bytes, contentType: contentType) }
        }
        return d
    }

    /// Stores an image (config + layers) and returns its manifest descriptor and layers.
    @discardableResult
    func putImage(
        repo: String, tag: String?, layers: [[UInt8]], architecture: String = "amd64"
    ) -> (manifest: Descriptor, layers: [Descriptor], config: Descriptor) {
        let layerDescs = layers.map { putBlob($0) }
        var cfg = ImageConfig(
            architecture: architecture, os: "linux",
            rootfs: .init(diffIDs: layerDescs.map { $0.digest }))
        cfg.config = ImageConfig.Config()
        cfg.config?.cmd = ["/bin/sh"]
        let configBytes = Array(try! JSONEncoder.sorted.encode(cfg))
        var configDesc = putBlob(configBytes)
        configDesc.mediaType = MediaType.ociConfig
        let manifest = Manifest(config: configDesc, layers: layerDescs)
        let bytes = Array(try! JSONEncoder.sorted.encode(manifest))
        let d = putManifest(repo: repo, reference: tag, bytes: bytes, contentType: MediaType.ociManifest)
        return (
            Descriptor(
                mediaType: MediaType.ociManifest, digest: d, size: Int64(bytes.count),
                platform: Platform(os: "linux", architecture: architecture)), layerDescs, configDesc
        )
    }

    private func challenge() -> StubServer.Reply? {
        switch lock.withLock({ auth }) {
        case .none: return nil
        case .bearer:
            return .json(
                401, #"{"errors":[{"code":"UNAUTHORIZED"}]}"#,
                [("WWW-Authenticate", #"Bearer realm="\#(server.base)/token",service="fake",scope="repository:x:pull""#)])
        case .basic:
            return .json(401, #"{"errors":[{"code":"UNAUTHORIZED"}]}"#, [("WWW-Authenticate", #"Basic realm="fake""#)])
        }
    }

    private func authorized(_ r: StubServer.Request) -> Bool {
        let header = r.header("Authorization")
        return lock.withLock {
            switch auth {
            case .none: return true
            case .bearer:
                guard let h = header, h.hasPrefix("Bearer ") else { return false }
                return validTokens.contains(String(h.dropFirst(7)))
            case .basic(let b): return header == "Basic \(b)"
            }
        }
    }

    func route(_ r: StubServer.Request) -> StubServer.Reply {
        if let h = lock.withLock({ hook }), let reply = h(r) { return reply }
        return routeWithoutHook(r)
    }

    func routeWithoutHook(_ r: StubServer.Request) -> StubServer.Reply {
        let path = r.path
        if path == "/token" {
            return lock.withLock { () -> StubServer.Reply in
                guard case .bearer(let basic, let field) = auth else { return .status(404) }
                if let basic, r.header("Authorization") != "Basic \(basic)" { return .json(401, "{}") }
                tokenCounter += 1
                let token = "tok\(tokenCounter)"
                validTokens.insert(token)
                return .json(200, #"{"\#(field)":"\#(token)","expires_in":300}"#)
            }
        }
        guard path.hasPrefix("/v2/") else { return .status(404) }
        if !authorized(r), let c = challenge() { return c }
        if path == "/v2/" { return .json(200, "{}") }
        if path == "/v2/_catalog" || path.hasSuffix("/tags/list") {
            let keys = lock.withLock { Array(manifests.keys) }
            let pairs = keys.map { $0.split(separator: " ", maxSplits: 1).map(String.init) }
            let items: [String]
            let field: String
            if path == "/v2/_catalog" {
                items = Array(Set(pairs.map { $0[0] })).sorted(); field = "repositories"
            } else {
                let repo = String(path.dropFirst(4).dropLast("/tags/list".count))
                items = Array(Set(pairs.filter { $0[0] == repo && !$0[1].contains(":") }.map { $0[1] })).sorted()
                field = "tags"
                if items.isEmpty { return .json(404, #"{"errors":[{"code":"NAME_UNKNOWN"}]}"#) }
            }
            // Pagination as the distribution registry does it: ?n=&last=, Link rel="next".
            let q = r.query
            let after = q["last"].map { last in items.filter { $0 > last } } ?? items
            let n = q["n"].flatMap(Int.init) ?? after.count
            let page = Array(after.prefix(n))
            var headers: [(String, String)] = []
            if page.count < after.count, let last = page.last {
                headers.append(("Link", "<\(path)?last=\(last)&n=\(n)>; rel=\"next\""))
            }
            let body = try! JSONSerialization.data(withJSONObject: [field: page])
            return .respond(status: 200, headers: [("Content-Type", "application/json")] + headers, body: Array(body))
        }
        if let range = path.range(of: "/manifests/", options: .backwards) {
            let repo = String(path[path.index(path.startIndex, offsetBy: 4)..<range.lowerBound])
            let ref = String(path[range.upperBound...])
            let doc = lock.withLock { manifests["\(repo) \(ref)"] }
            guard let doc else {
                let known = lock.withLock { manifests.keys.contains { $0.hasPrefix("\(repo) ") } }
                return .json(404, known ? #"{"errors":[{"code":"MANIFEST_UNKNOWN"}]}"# : #"{"errors":[{"code":"NAME_UNKNOWN"}]}"#)
            }
            return .respond(status: 200, headers: [("Content-Type", doc.contentType)], body: doc.bytes)
        }
        if let range = path.range(of: "/blobs/", options: .backwards) {
            let digest = String(path[range.upperBound...])
            guard let bytes = lock.withLock({ blobs[digest] }) else {
                return .json(404, #"{"errors":[{"code":"BLOB_UNKNOWN"}]}"#)
            }
            return FakeRegistry.serve(bytes, range: supportsRange ? r.header("Range") : nil)
        }
        return .status(404)
    }

    /// 200, or 206 for `Range: bytes=N-`.
    static func serve(_ bytes: [UInt8], range: String?) -> StubServer.Reply {
        if let range, range.hasPrefix("bytes="), range.hasSuffix("-"), let start = Int(range.dropFirst(6).dropLast()) {
            guard start < bytes.count else { return .status(416) }
            return .respond(
                status: 206, headers: [("Content-Range", "bytes \(start)-\(bytes.count - 1)/\(bytes.count)")],
                body: Array(bytes[start...]))
        }
        return .respond(status: 200, headers: [("Content-Type", "application/octet-stream")], body: bytes)
    }
}

extension JSONEncoder {
    static var sorted: JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return e
    }
}

/// Deterministic pseudo-random bytes.
func testBytes(_ count: Int, seed: UInt64) -> [UInt8] {
    var x = seed &* 0x9E3779B97F4A7C15 | 1
    return (0..<count).map { _ in
        x ^= x << 13; x ^= x >> 7; x ^= x << 17
        return UInt8(truncatingIfNeeded: x)
    }
}
