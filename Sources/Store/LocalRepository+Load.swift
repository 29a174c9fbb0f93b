import Archive
import FoundationEssentials
import OCI
import UDockerSystem
#if canImport(Glibc)
import Glibc
#endif

/// A member of a loaded archive, staged under the load's dot-directory.
struct StagedMember {
    var file: String
    var digest: Digest
    var size: Int64
}

/// One image found in an archive, verified and ready to publish.
struct LoadableImage {
    var names: [LocalImageName]
    var manifest: [UInt8]
    /// blob digest → staged file (config and layers).
    var blobs: [Digest: String]
}

extension LocalRepository {
    static let metadataLimit = 16 << 20

    /// `load`: reads a docker-archive (legacy `docker save`, Docker ≥ 25 with an embedded OCI
    /// layout, skopeo/podman `docker-archive:`) or an OCI image layout archive (`oci-archive:`,
    /// umoci), plain or compressed, and stores every image it names in the v2 layout
    /// (`manifest` + `sha256:<hex>` blobs). Member names are validated before use and no member is
    /// ever written under its own name: each goes to a numbered file in a staging dot-directory
    /// and is hashed on the way. Every blob is checked against its digest, every layer is read
    /// through to its end and compared with the config's `rootfs.diff_ids`. Nothing is published
    /// unless every image of the archive is sound; then all tags appear under one lock.
    ///
    /// `nameOverride` (`load -i f NAME`) replaces the repository name (and the tag if it has one).
    public func loadImages(
        from fd: Int32, sourceName: String, nameOverride: String? = nil,
        info: (String) -> Void = { _ in }
    ) throws -> [LocalImageName] {
        let staging = try StagingDirectory(in: layersDirectory, prefix: "loading-\(StagingDirectory.uniqueSuffix())")
        defer { staging.discard() }
        var files: [String: StagedMember] = [:]
        var symlinks: [String: String] = [:]
        do {
            let reader = try ArchiveReader(fileDescriptor: fd)
            var n = 0
            while let m = try reader.next() {
                switch m.kind {
                case .file:
                    n += 1
                    let path = "\(staging.path)/m\(n)"
                    let (digest, size) = try Self.stageMember(reader, to: path)
                    files[m.name] = StagedMember(file: path, digest: digest, size: size)
                    symlinks[m.name] = nil
                case .hardlink:
                    guard let t = files[m.linkName] else {
                        throw ArchiveError(.invalidEntry, "hard link to a missing member: \(m.linkName)")
                    }
                    files[m.name] = t
                case .symlink:
                    guard let t = ArchiveReader.resolveLink(member: m.name, target: m.linkName) else {
                        throw ArchiveError(.invalidEntry, "symlink '\(m.name)' points outside the archive")
                    }
                    symlinks[m.name] = t
                    files[m.name] = nil
                default:
                    continue
                }
            }
            try reader.finish()
        } catch let e as StoreError { throw e } catch {
            throw StoreError("\(sourceName): cannot read archive: \(error)", cause: error)
        }
        func lookup(_ name: String) -> StagedMember? {
            var cur = name
            for _ in 0..<16 {
                if let f = files[cur] { return f }
                guard let t = symlinks[cur] else { return nil }
                cur = t
            }
            return nil
        }
        func read(_ name: String) throws -> [UInt8] {
            guard let m = lookup(name) else { throw StoreError("\(sourceName): the archive has no \(name)") }
            guard m.size <= Int64(Self.metadataLimit), let bytes = AtomicFile.read(m.file) else {
                throw StoreError("\(sourceName): \(name) is too large or unreadable")
            }
            return bytes
        }

        var images: [LoadableImage]
        if lookup("manifest.json") != nil {
            images = try dockerArchiveImages(read: read, lookup: lookup, sourceName: sourceName)
        } else if lookup("index.json") != nil {
            images = try ociLayoutImages(read: read, lookup: lookup, sourceName: sourceName)
        } else if lookup("repositories") != nil {
            throw StoreError("\(sourceName): docker-save archive without manifest.json (Docker < 1.10) is not supported")
        } else {
            throw StoreError("\(sourceName): not a docker-archive or OCI image layout (no manifest.json or index.json)")
        }
        guard !images.isEmpty else { throw StoreError("\(sourceName): the archive holds no image") }
        try applyNames(&images, override: nameOverride)
        return try publish(images, info: info)
    }

    /// Copies the current member to `path`, hashing it.
    private static func stageMember(_ reader: ArchiveReader, to path: String) throws -> (Digest, Int64) {
        let fd = try syscall("open", path: path) { open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644) }
        defer { close(fd) }
        var hasher = DigestHasher()
        var size: Int64 = 0
        try reader.readData { chunk in
            hasher.update(chunk)
            size += Int64(chunk.count)
            var off = 0
            while off < chunk.count {
                let w = write(fd, chunk.baseAddress! + off, chunk.count - off)
                if w < 0 { if errno == EINTR { continue }; throw SystemError("write", path: path) }
                off += w
            }
        }
        return (hasher.finalize(), size)
    }

    /// `blobs/sha256/<hex>` for a digest (validated by `Digest`'s parser before any path is built).
    private static func blobPath(_ d: Digest) -> String { "blobs/\(d.algorithm)/\(d.hex)" }

    /// Reads a layer through (decompression, tar headers) and checks it against the config.
    private func checkLayer(_ m: StagedMember, name: String, expectedDiffID: Digest?, sourceName: String) throws -> Compression {
        let summary: LayerSummary
        do { summary = try LayerInspector.inspect(path: m.file) } catch {
            throw StoreError("\(sourceName): layer \(name) is corrupt: \(error)", kind: .corrupt, cause: error)
        }
        if let expectedDiffID, expectedDiffID != summary.diffID {
            throw StoreError(
                "\(sourceName): layer \(name) does not match the image config (diff_id \(expectedDiffID), content \(summary.diffID))")
        }
        return summary.compression
    }

    private static func layerMediaType(_ c: Compression) -> String {
        switch c {
        case .none: return MediaType.ociLayer
        case .gzip: return MediaType.ociLayerGzip
        case .zstd: return MediaType.ociLayerZstd
        }
    }

    // MARK: docker-archive

    private struct DockerManifestEntry: Decodable {
        var Config: String
        var RepoTags: [String]?
        var Layers: [String]
    }

    private func dockerArchiveImages(
        read: (String) throws -> [UInt8], lookup: (String) -> StagedMember?,
        sourceName: String
    ) throws -> [LoadableImage] {
        let entries: [DockerManifestEntry]
        do { entries = try JSONDecoder().decode([DockerManifestEntry].self, from: Data(try read("manifest.json"))) } catch let e
            as StoreError
        { throw e } catch {
            throw StoreError("\(sourceName): invalid manifest.json: \(error)", kind: .corrupt, cause: error)
        }
        var out: [LoadableImage] = []
        for entry in entries {
            guard let configName = ArchiveReader.normalize(Array(entry.Config.utf8)), let config = lookup(configName) else {
                throw StoreError("\(sourceName): manifest.json names a missing config: \(entry.Config)")
            }
            try Self.checkNamedDigest(configName, config, sourceName: sourceName)
            let configBytes = try read(configName)
            guard let cfg = try? JSONDecoder().decode(ImageConfig.self, from: Data(configBytes)) else {
                throw StoreError("\(sourceName): invalid image config \(entry.Config)")
            }
            let diffIDs = cfg.rootfs?.diffIDs ?? []
            if !diffIDs.isEmpty && diffIDs.count != entry.Layers.count {
                throw StoreError("\(sourceName): \(entry.Config) lists \(diffIDs.count) layers but manifest.json \(entry.Layers.count)")
            }
            var blobs: [Digest: String] = [config.digest: config.file]
            var layers: [Descriptor] = []
            for (i, l) in entry.Layers.enumerated() {
                guard let ln = ArchiveReader.normalize(Array(l.utf8)), let m = lookup(ln) else {
                    throw StoreError("\(sourceName): manifest.json names a missing layer: \(l)")
                }
                try Self.checkNamedDigest(ln, m, sourceName: sourceName)
                let c = try checkLayer(m, name: l, expectedDiffID: diffIDs.isEmpty ? nil : diffIDs[i], sourceName: sourceName)
                blobs[m.digest] = m.file
                layers.append(Descriptor(mediaType: Self.layerMediaType(c), digest: m.digest, size: m.size))
            }
            let manifest = Manifest(
                config: Descriptor(mediaType: MediaType.ociConfig, digest: config.digest, size: config.size), layers: layers)
            let bytes = Array(try JSONEncoder().encode(manifest))
            var names: [LocalImageName] = []
            for t in entry.RepoTags ?? [] {
                do { names.append(try LocalImageName(parsing: Self.shortDockerName(t))) } catch {
                    throw StoreError("\(sourceName): \(error)", cause: error)
                }
            }
            out.append(LoadableImage(names: names, manifest: bytes, blobs: blobs))
        }
        return out
    }

    /// A member named by its digest (`blobs/sha256/<hex>` or legacy `<hex>.json`) must hash to it.
    private static func checkNamedDigest(_ name: String, _ m: StagedMember, sourceName: String) throws {
        let parts = name.split(separator: "/")
        var expected: String?
        if parts.count == 3, parts[0] == "blobs" {
            expected = "\(parts[1]):\(parts[2])"
        } else if parts.count == 1, name.hasSuffix(".json"), name.count == 69 {
            expected = "sha256:\(name.dropLast(5))"
        }
        guard let expected, let d = try? Digest(parsing: expected) else { return }
        if d != m.digest { throw StoreError("\(sourceName): digest mismatch for \(name): content is \(m.digest)") }
    }

    /// Docker writes `docker.io/library/x:t` as `x:t` in RepoTags; do the same for OCI names.
    static func shortDockerName(_ s: String) -> String {
        for p in ["docker.io/library/", "index.docker.io/library/", "docker.io/", "index.docker.io/"] where s.hasPrefix(p) {
            return String(s.dropFirst(p.count))
        }
        return s
    }

    // MARK: OCI image layout

    private func ociLayoutImages(
        read: (String) throws -> [UInt8], lookup: (String) -> StagedMember?,
        sourceName: String
    ) throws -> [LoadableImage] {
        let index: Index
        do { index = try JSONDecoder().decode(Index.self, from: Data(try read("index.json"))) } catch let e as StoreError { throw e } catch
        {
            throw StoreError("\(sourceName): invalid index.json: \(error)", kind: .corrupt, cause: error)
        }
        func blob(_ d: Descriptor) throws -> StagedMember {
            guard let m = lookup(Self.blobPath(d.digest)) else {
                throw StoreError("\(sourceName): blob \(d.digest) is missing from the archive")
            }
            guard m.digest == d.digest else {
                throw StoreError("\(sourceName): digest mismatch for blob \(d.digest): content is \(m.digest)")
            }
            guard d.size < 0 || m.size == d.size else { throw StoreError("\(sourceName): size mismatch for blob \(d.digest)") }
            return m
        }
        func blobBytes(_ d: Descriptor) throws -> [UInt8] {
            let m = try blob(d)
            guard m.size <= Int64(Self.metadataLimit), let b = AtomicFile.read(m.file) else {
                throw StoreError("\(sourceName): blob \(d.digest) is too large")
            }
            return b
        }
        /// A manifest descriptor for this platform: nested indexes are resolved to the host's entry.
        func resolveManifest(_ d: Descriptor, depth: Int) throws -> (Descriptor, [UInt8])? {
            guard depth < 4 else { throw StoreError("\(sourceName): indexes nested too deeply") }
            let bytes = try blobBytes(d)
            let kind = try? JSONDecoder().decode(ManifestKind.self, from: Data(bytes))
            if MediaType.isIndex(d.mediaType) || kind?.isIndex == true {
                guard let sub = try? JSONDecoder().decode(Index.self, from: Data(bytes)) else {
                    throw StoreError("\(sourceName): invalid index \(d.digest)")
                }
                let candidates = sub.manifests.filter { $0.annotations?["vnd.docker.reference.type"] != "attestation-manifest" }
                let pick = candidates.first { Platform.host.matches($0.platform) } ?? (candidates.count == 1 ? candidates.first : nil)
                guard let pick else {
                    throw StoreError(
                        "\(sourceName): no image for \(Platform.host) in index (platforms: \(sub.platforms.joined(separator: ", ")))")
                }
                return try resolveManifest(pick, depth: depth + 1)
            }
            return (d, bytes)
        }
        var out: [LoadableImage] = []
        for d in index.manifests {
            if d.annotations?["vnd.docker.reference.type"] == "attestation-manifest" { continue }
            guard let (md, bytes) = try resolveManifest(d, depth: 0) else { continue }
            guard let manifest = try? JSONDecoder().decode(Manifest.self, from: Data(bytes)) else {
                throw StoreError("\(sourceName): invalid image manifest \(md.digest)")
            }
            let configBytes = try blobBytes(manifest.config)
            let config = try blob(manifest.config)
            let cfg = try? JSONDecoder().decode(ImageConfig.self, from: Data(configBytes))
            let diffIDs = cfg?.rootfs?.diffIDs ?? []
            if !diffIDs.isEmpty && diffIDs.count != manifest.layers.count {
                throw StoreError(
                    "\(sourceName): config \(manifest.config.digest) lists \(diffIDs.count) layers but the manifest \(manifest.layers.count)"
                )
            }
            var blobs: [Digest: String] = [manifest.config.digest: config.file]
            for (i, l) in manifest.layers.enumerated() {
                let m = try blob(l)
                _ = try checkLayer(
                    m, name: l.digest.description, expectedDiffID: diffIDs.isEmpty ? nil : diffIDs[i], sourceName: sourceName)
                blobs[l.digest] = m.file
            }
            var names: [LocalImageName] = []
            let ann = d.annotations ?? [:]
            if let full = ann["io.containerd.image.name"] {
                names.append(try Self.parseName(Self.shortDockerName(full), sourceName))
            } else if let ref = ann["org.opencontainers.image.ref.name"] {
                if let colon = ref.lastIndex(of: ":"), !ref[colon...].contains("/") {
                    names.append(try Self.parseName(ref, sourceName))
                } else {
                    // Only a tag: the repository name comes from the command line or is made up.
                    names.append(try Self.parseName("\(Self.randomImageName()):\(ref)", sourceName))
                }
            }
            out.append(LoadableImage(names: names, manifest: bytes, blobs: blobs))
        }
        return out
    }

    private static func parseName(_ s: String, _ sourceName: String) throws -> LocalImageName {
        do { return try LocalImageName(parsing: s) } catch { throw StoreError("\(sourceName): \(error)", cause: error) }
    }

    /// udocker's random image name: 16 hex characters.
    static func randomImageName() -> String { Format.hex((0..<8).map { _ in UInt8.random(in: 0...255) }) }

    private func applyNames(_ images: inout [LoadableImage], override: String?) throws {
        for i in images.indices {
            if let o = override {
                let parsed = try LocalImageName(parsing: o)
                let hasTag = o.lastIndex(of: ":").map { !o[$0...].contains("/") } ?? false
                if images[i].names.isEmpty {
                    images[i].names = [parsed]
                } else {
                    images[i].names = try images[i].names.map {
                        try LocalImageName(validating: parsed.name, tag: hasTag ? parsed.tag : $0.tag)
                    }
                }
            } else if images[i].names.isEmpty {
                images[i].names = [try LocalImageName(validating: Self.randomImageName(), tag: "latest")]
            }
        }
        var seen = Set<LocalImageName>()
        for img in images {
            for n in img.names {
                guard seen.insert(n).inserted else { throw StoreError("the archive names \(n) twice") }
                if isImageProtected(n) { throw StoreError("image is protected: \(n)") }
            }
        }
    }

    /// Moves the blobs into `layers/` and publishes every tag, all under the repository lock. A
    /// tag that already exists is replaced (as `docker load` does, and said); the old one is kept aside
    /// until every tag is in place, so a failure restores the repository as it was.
    private func publish(_ images: [LoadableImage], info: (String) -> Void) throws -> [LocalImageName] {
        try withLock {
            var moved: [String] = []
            var published: [(final: String, old: String?)] = []
            do {
                for img in images {
                    for (d, file) in img.blobs {
                        if let dst = try blobStore.adopt(file, as: d) { moved.append(dst) }
                    }
                }
                var out: [LocalImageName] = []
                for img in images {
                    for name in img.names {
                        published.append(try publishV2TagLocked(name, manifest: img.manifest, blobs: Array(img.blobs.keys)))
                        out.append(name)
                    }
                }
                for p in published { if let old = p.old { try? FileTree.remove(old) } }
                // A replaced tag is said (`docker load` says it too): the image it named is no
                // longer reachable by that name.
                for (n, p) in zip(out, published) {
                    info(p.old == nil ? "loaded image: \(n)" : "loaded image: \(n) (replaced the existing tag)")
                }
                return out
            } catch {
                for p in published.reversed() {
                    try? FileTree.remove(p.final)
                    if let old = p.old { rename(old, p.final) }
                }
                for p in moved { unlink(p) }
                throw error
            }
        }
    }
}
