/// An image manifest (Docker schema2 or OCI).
public struct Manifest: Codable, Sendable, Hashable {
    public var schemaVersion: Int
    public var mediaType: String?
    public var config: Descriptor
    public var layers: [Descriptor]
    public var annotations: [String: String]?

    public init(
        schemaVersion: Int = 2, mediaType: String? = MediaType.ociManifest, config: Descriptor, layers: [Descriptor],
        annotations: [String: String]? = nil
    ) {
        self.schemaVersion = schemaVersion; self.mediaType = mediaType; self.config = config
        self.layers = layers; self.annotations = annotations
    }
}

/// A manifest list (Docker) or image index (OCI).
public struct Index: Codable, Sendable, Hashable {
    public var schemaVersion: Int
    public var mediaType: String?
    public var manifests: [Descriptor]
    public var annotations: [String: String]?

    public init(
        schemaVersion: Int = 2, mediaType: String? = MediaType.ociIndex, manifests: [Descriptor], annotations: [String: String]? = nil
    ) {
        self.schemaVersion = schemaVersion; self.mediaType = mediaType; self.manifests = manifests; self.annotations = annotations
    }

    /// The first manifest whose platform matches (udocker's rule: first match wins).
    public func manifest(for platform: Platform) -> Descriptor? {
        manifests.first { platform.matches($0.platform) }
    }

    /// The platforms on offer, for error messages.
    public var platforms: [String] { manifests.compactMap { $0.platform?.description } }
}

/// Just enough of a manifest document to tell what kind it is.
public struct ManifestKind: Decodable, Sendable {
    public var schemaVersion: Int?
    public var mediaType: String?
    public var manifests: [Descriptor]?
    public var config: Descriptor?
    public var fsLayers: [[String: String]]?

    public var isIndex: Bool { MediaType.isIndex(mediaType) || (mediaType == nil && manifests != nil) }
    public var isSchema1: Bool { schemaVersion == 1 || MediaType.isSchema1(mediaType) || fsLayers != nil }
}
