import AsyncHTTPClient
import FoundationEssentials
import NIOCore
import NIOHTTP1
import OCI
import UDockerSystem

/// A manifest document as served.
struct FetchedDocument {
    var bytes: [UInt8]
    var contentType: String?
    var kind: ManifestKind
    var digest: Digest
}

extension RegistryClient {
    /// GET the manifest for ref (by tag or digest); an index or manifest list is resolved with
    /// `platform` (default `Platform.host`) taking the first matching entry, as udocker does. The
    /// child is fetched by digest and must hash to it. The config blob is fetched and verified.
    public func resolveImage(_ ref: ImageReference, platform: Platform?) async throws -> ResolvedImage {
        var endpoint = try await endpoint(for: ref)
        let (top, used) = try await withOfficialFallback(endpoint) { e in
            (try await fetchDocument(e, ref: ref, reference: ref.digest?.description ?? ref.tag, expected: nil), e)
        }
        endpoint = used
        var doc = top
        var indexBytes: [UInt8]?
        if top.kind.isSchema1 { throw RegistryError.schema1Unsupported(ref.description) }
        if isIndex(top) {
            indexBytes = top.bytes
            let child = try selectChild(top, platform: platform ?? .host, ref: ref)
            doc = try await fetchDocument(endpoint, ref: ref, reference: child.digest.description, expected: child)
            if doc.kind.isSchema1 { throw RegistryError.schema1Unsupported(ref.description) }
            if isIndex(doc) { throw RegistryError.invalidManifest("\(ref.description): nested index for \(child.digest) is not supported") }
        }
        let manifest: Manifest
        do { manifest = try JSONDecoder().decode(Manifest.self, from: Data(doc.bytes)) } catch {
            throw RegistryError.invalidManifest("\(ref.description): \(RegistryClient.decodingReason(error))")
        }
        guard manifest.schemaVersion == 2 else {
            throw RegistryError.invalidManifest("\(ref.description): schemaVersion \(manifest.schemaVersion)")
        }
        let configBytes = try await fetchSmallBlob(endpoint, manifest.config, limit: RegistryClient.configLimit, what: "image config")
        let config: ImageConfig
        do { config = try JSONDecoder().decode(ImageConfig.self, from: Data(configBytes)) } catch {
            throw RegistryError.invalidManifest(
                "\(ref.description): config \(manifest.config.digest): \(RegistryClient.decodingReason(error))")
        }
        return ResolvedImage(
            manifest: manifest, manifestBytes: doc.bytes, manifestDigest: doc.digest,
            config: config, configBytes: configBytes, indexBytes: indexBytes)
    }

    /// For `manifest inspect`: the raw document. An index is returned as is unless `platform` is
    /// given, in which case the matching child manifest is returned. Schema 1 documents are
    /// returned raw too (inspect only shows them).
    public func fetchManifestDocument(_ ref: ImageReference, platform: Platform?) async throws -> [UInt8] {
        var endpoint = try await endpoint(for: ref)
        let (top, used) = try await withOfficialFallback(endpoint) { e in
            (try await fetchDocument(e, ref: ref, reference: ref.digest?.description ?? ref.tag, expected: nil), e)
        }
        endpoint = used
        guard let platform, isIndex(top) else { return top.bytes }
        let child = try selectChild(top, platform: platform, ref: ref)
        return try await fetchDocument(endpoint, ref: ref, reference: child.digest.description, expected: child).bytes
    }

    /// The repository's tags (`GET /v2/<repo>/tags/list`), following `Link` pagination.
    public func listTags(_ ref: ImageReference) async throws -> [String] {
        try await withOfficialFallback(try await endpoint(for: ref)) { try await listTags($0, ref: ref) }
    }

    private func listTags(_ endpoint: Endpoint, ref: ImageReference) async throws -> [String] {
        try await pagedList(
            endpoint, path: "/v2/\(endpoint.repository)/tags/list", key: "tags", what: "tag list",
            maxPages: 100
        ) { code, origin in
            code == 404
                ? .imageNotFound(ref.localName)
                : .unexpectedStatus(host: origin.hostPort, status: code, what: "tags of \(ref.localName)")
        }
    }

    func isIndex(_ doc: FetchedDocument) -> Bool {
        if let ct = doc.contentType, MediaType.isIndex(ct) { return true }
        if let ct = doc.contentType, MediaType.isManifest(ct) { return false }
        return doc.kind.isIndex
    }

    func selectChild(_ doc: FetchedDocument, platform: Platform, ref: ImageReference) throws -> Descriptor {
        let index: Index
        do { index = try JSONDecoder().decode(Index.self, from: Data(doc.bytes)) } catch {
            throw RegistryError.invalidManifest("\(ref.description): index: \(RegistryClient.decodingReason(error))")
        }
        // Entries of unknown media types (attestations, nested artifacts) are skipped, not errors.
        let candidates = index.manifests.filter { d in
            MediaType.isManifest(d.mediaType) || MediaType.isSchema1(d.mediaType) || d.mediaType.isEmpty
        }
        if let match = candidates.first(where: { platform.matches($0.platform) }) { return match }
        let available = candidates.compactMap { $0.platform }.filter { $0.os != "unknown" }.map { Format.printable($0.description) }
        var seen = Set<String>()
        throw RegistryError.noMatchingPlatform(
            platform: platform.description, image: ref.description,
            available: available.filter { seen.insert($0).inserted })
    }

    /// GET `/v2/<repo>/manifests/<reference>`, size-limited, with the media type checked against
    /// the body and, when fetched by digest, the bytes verified against it.
    func fetchDocument(_ endpoint: Endpoint, ref: ImageReference, reference: String, expected: Descriptor?) async throws -> FetchedDocument
    {
        try await retryingLostBody("manifest \(ref.localName):\(reference)") {
            try await fetchDocumentOnce(endpoint, ref: ref, reference: reference, expected: expected)
        }
    }

    private func fetchDocumentOnce(
        _ endpoint: Endpoint, ref: ImageReference, reference: String, expected: Descriptor?
    ) async throws -> FetchedDocument {
        let accept = MediaType.manifestAccept.joined(separator: ", ")
        let (response, origin) = try await registryGET(
            endpoint, path: "/v2/\(endpoint.repository)/manifests/\(reference)",
            headers: ["Accept": accept], timeout: .seconds(300))
        let code = Int(response.status.code)
        switch code {
        case 200:
            break
        case 404:
            let body = (try? await RegistryClient.collectQuietly(response, limit: RegistryClient.errorBodyLimit)) ?? []
            let codes = RegistryErrorBody.codes(in: body)
            if codes.contains("NAME_UNKNOWN") { throw RegistryError.imageNotFound(ref.localName) }
            if expected != nil || ref.digest != nil { throw RegistryError.manifestNotFound("\(ref.localName)@\(reference)") }
            if codes.contains("MANIFEST_UNKNOWN") || codes.contains("TAG_UNKNOWN") {
                // The distribution registry says MANIFEST_UNKNOWN for a missing repository too:
                // its tag list tells the two apart.
                if await repositoryExists(endpoint) == false { throw RegistryError.imageNotFound(ref.localName) }
                throw RegistryError.tagNotFound("\(ref.localName):\(reference)")
            }
            throw RegistryError.imageNotFound("\(ref.localName):\(reference)")
        case 403:
            await RegistryClient.discard(response)
            throw RegistryError.authRefused(host: origin.hostPort, status: 403, detail: "access to \(endpoint.repository) denied")
        default:
            await RegistryClient.discard(response)
            throw RegistryError.unexpectedStatus(host: origin.hostPort, status: code, what: "manifest \(ref.localName):\(reference)")
        }
        let contentType = response.headers.first(name: "Content-Type").map {
            String($0.split(separator: ";", maxSplits: 1).first ?? "").trimmed(where: \.isBlank).lowercased()
        }
        let bytes = try await RegistryClient.collect(
            response, limit: RegistryClient.manifestLimit,
            what: "manifest \(ref.localName):\(reference)", host: origin.hostPort)
        let kind: ManifestKind
        do { kind = try JSONDecoder().decode(ManifestKind.self, from: Data(bytes)) } catch {
            throw RegistryError.invalidManifest("\(ref.localName):\(reference) is not a JSON manifest")
        }
        let wantedAlgorithm = expected?.digest.algorithm ?? ref.digest?.algorithm ?? "sha256"
        let digest = BlobHasher.digest(of: bytes, algorithm: wantedAlgorithm)
        if let expected {
            guard Int64(bytes.count) == expected.size else {
                throw RegistryError.sizeMismatch(digest: expected.digest.description, expected: expected.size, detail: "got \(bytes.count)")
            }
            guard digest == expected.digest else { throw RegistryError.digestMismatch(expected: expected.digest, actual: digest) }
        } else if let pinned = ref.digest, pinned.description == reference {
            guard digest == pinned else { throw RegistryError.digestMismatch(expected: pinned, actual: digest) }
        }
        // Media-type confusion (CVE-2021-41190): one document is either an index or a manifest.
        struct Shape: Decodable { var manifests: [Descriptor]?; var layers: [Descriptor]?; var config: Descriptor? }
        if let shape = try? JSONDecoder().decode(Shape.self, from: Data(bytes)), shape.manifests != nil,
            shape.layers != nil || shape.config != nil
        {
            throw RegistryError.invalidManifest("\(ref.localName):\(reference) has both 'manifests' and 'layers'")
        }
        if let ct = contentType, let mt = kind.mediaType, ct != mt,
            MediaType.manifestAccept.contains(ct), MediaType.manifestAccept.contains(mt),
            MediaType.isIndex(ct) != MediaType.isIndex(mt) || MediaType.isSchema1(ct) != MediaType.isSchema1(mt)
        {
            throw RegistryError.invalidManifest("\(ref.localName):\(reference): Content-Type \(ct) contradicts mediaType \(mt)")
        }
        if let ct = contentType, MediaType.isSchema1(ct) {
            var k = kind; k.schemaVersion = 1
            return FetchedDocument(bytes: bytes, contentType: contentType, kind: k, digest: digest)
        }
        return FetchedDocument(bytes: bytes, contentType: contentType, kind: kind, digest: digest)
    }

    /// Whether the repository exists, by its tag list (nil when the registry does not say).
    func repositoryExists(_ endpoint: Endpoint) async -> Bool? {
        guard
            let (response, _) = try? await registryGET(
                endpoint, path: "/v2/\(endpoint.repository)/tags/list?n=1",
                headers: ["Accept": "application/json"], timeout: .seconds(60))
        else { return nil }
        let code = Int(response.status.code)
        let body = (try? await RegistryClient.collectQuietly(response, limit: RegistryClient.errorBodyLimit)) ?? []
        if code == 200 { return true }
        if code == 404 && RegistryErrorBody.codes(in: body).contains("NAME_UNKNOWN") { return false }
        return nil
    }

    /// A small blob (the config) read into memory, size- and digest-checked.
    func fetchSmallBlob(_ endpoint: Endpoint, _ d: Descriptor, limit: Int64, what: String) async throws -> [UInt8] {
        guard d.size >= 0, d.size <= limit else { throw RegistryError.tooLarge(what: "\(what) \(d.digest)", limit: Int(limit)) }
        return try await retryingLostBody("\(what) \(d.digest)") {
            try await fetchSmallBlobOnce(endpoint, d, what: what)
        }
    }

    private func fetchSmallBlobOnce(_ endpoint: Endpoint, _ d: Descriptor, what: String) async throws -> [UInt8] {
        let (response, origin) = try await registryGET(endpoint, path: "/v2/\(endpoint.repository)/blobs/\(d.digest)")
        let code = Int(response.status.code)
        guard code == 200 else {
            await RegistryClient.discard(response)
            if code == 404 { throw RegistryError.blobNotFound(digest: d.digest.description, repository: endpoint.repository) }
            throw RegistryError.unexpectedStatus(host: origin.hostPort, status: code, what: "\(what) \(d.digest)")
        }
        let bytes: [UInt8]
        do {
            bytes = try await RegistryClient.collect(response, limit: Int(d.size), what: "\(what) \(d.digest)", host: origin.hostPort)
        } catch RegistryError.tooLarge {
            throw RegistryError.sizeMismatch(digest: d.digest.description, expected: d.size, detail: "the server sent more")
        }
        guard Int64(bytes.count) == d.size else {
            throw RegistryError.sizeMismatch(digest: d.digest.description, expected: d.size, detail: "got \(bytes.count)")
        }
        let actual = BlobHasher.digest(of: bytes, algorithm: d.digest.algorithm)
        guard actual == d.digest else { throw RegistryError.digestMismatch(expected: d.digest, actual: actual) }
        return bytes
    }

    static func decodingReason(_ error: Error) -> String {
        switch error {
        case DecodingError.keyNotFound(let key, _): return "missing field '\(key.stringValue)'"
        case DecodingError.typeMismatch(_, let c), DecodingError.valueNotFound(_, let c):
            return "bad field '\(c.codingPath.map(\.stringValue).joined(separator: "."))'"
        case DecodingError.dataCorrupted(let c):
            if let u = c.underlyingError as? Digest.ParseError { return u.description }
            return "malformed JSON" + (c.codingPath.isEmpty ? "" : " at '\(c.codingPath.map(\.stringValue).joined(separator: "."))'")
        default: return String(describing: error).prefix(200).description
        }
    }
}
