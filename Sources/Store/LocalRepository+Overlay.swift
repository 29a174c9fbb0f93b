import Archive
import FoundationEssentials
import OCI
import UDockerSystem
#if canImport(Glibc)
import Glibc
#endif

/// How `create` stores a container.
public enum ContainerStorage: String, Sendable, CaseIterable {
    /// udocker-compatible: the image flattened into `containers/<id>/ROOT` (every engine).
    case flat
    /// overlayfs of the shared layer cache plus a private `upper/` (N1 only until `setup` makes it flat).
    case overlay

    /// The default when neither `--storage` nor `UDOCKER_CONTAINER_STORAGE` / `container_storage` says.
    public static let defaultStorage: ContainerStorage = .flat

    /// A configured value (`container_storage`, which `UDOCKER_CONTAINER_STORAGE` overrides in the
    /// configuration): blank is the default; anything but a storage name is an error.
    public init(validating text: String) throws {
        let v = text.trimmed(where: \.isBlank).lowercased()
        if v.isEmpty { self = Self.defaultStorage; return }
        guard let s = ContainerStorage(rawValue: v) else { throw StoreError("invalid container storage: \(v) (flat or overlay)") }
        self = s
    }
}

/// Overlay containers:
///
///     containers/<id>/ROOT             empty mountpoint (so `ps`, also Python's, lists it)
///     containers/<id>/upper, work      overlayfs upper and work directories (the container's changes)
///     containers/<id>/lowers           DiffID hex of each layer, base first (in layers/cache/)
///     containers/<id>/container.json, imagerepo.name, execmode (N1)
extension LocalRepository {
    public var layerCache: LayerCache { LayerCache(directory: "\(layersDirectory)/cache") }

    public func isOverlayContainer(_ id: String) -> Bool { FileInfo.isRegularFile("\(containerDirectory(id))/lowers") }

    /// Cache directories of an overlay container's layers, base first.
    public func overlayLowers(_ id: String) throws -> [String] {
        try validatedLowers(id).map { "\(layerCache.directory)/\($0)" }
    }

    /// The overlay of container `id`, its metadata checked first (it may come from someone else's
    /// repository): `lowers` must list layer ids (64 hex digits) present in the cache, `upper` and
    /// `work` must be real directories of the container (not symlinks).
    public func overlayLayout(_ id: String) throws -> OverlayLayout {
        let dir = containerDirectory(id)
        let lowers = try validatedLowers(id)
        for d in ["upper", "work"] where !CloneMetadata.isRealDirectory("\(dir)/\(d)") {
            throw StoreError("invalid overlay container metadata: \(d) of \(id) is not a directory")
        }
        return OverlayLayout(cacheDirectory: layerCache.directory, lowers: lowers, upper: "\(dir)/upper", work: "\(dir)/work")
    }

    /// `setup --execmode=<not N1>` of an overlay container: `copy` fills a new directory with the
    /// merged tree (the engines mount it), which becomes the flat ROOT; then the overlay files go
    /// (`lowers` last: it marks the kind). An interrupted copy leaves the container as it was.
    public func flattenOverlay(_ id: String, copy: (_ layout: OverlayLayout, _ into: String) throws -> Void) throws {
        let layout = try overlayLayout(id)
        let dir = containerDirectory(id)
        let staging = "\(dir)/.ROOT-materialize"
        if FileInfo.exists(staging) { try FileTree.remove(staging) }
        try syscall("mkdir", path: staging) { mkdir(staging, 0o755) }
        do { try copy(layout, staging) } catch {
            try? FileTree.remove(staging)
            throw error
        }
        let root = containerRoot(id)
        try syscall("rmdir", path: root) { rmdir(root) }
        try syscall("rename", path: root) { rename(staging, root) }
        for d in ["upper", "work"] where FileInfo.exists("\(dir)/\(d)") { try FileTree.remove("\(dir)/\(d)") }
        try syscall("unlink", path: "\(dir)/lowers") { unlink("\(dir)/lowers") }
    }

    func validatedLowers(_ id: String) throws -> [String] {
        let path = "\(containerDirectory(id))/lowers"
        guard CloneMetadata.regularFile(path) != nil, let text = AtomicFile.readString(path) else {
            throw StoreError("invalid overlay container metadata: cannot read \(path)")
        }
        let lowers = text.split(separator: "\n").map(String.init)
        guard !lowers.isEmpty else { throw StoreError("invalid overlay container metadata: \(path) lists no layer") }
        for l in lowers {
            guard l.count == 64, l.allSatisfy({ $0.isHexDigit && !$0.isUppercase }) else {
                throw StoreError("invalid overlay container metadata: \(path): not a layer id: \(l.prefix(80))")
            }
            guard CloneMetadata.isRealDirectory("\(layerCache.directory)/\(l)") else {
                throw StoreError("invalid overlay container metadata: layer \(l) is not in the layer cache")
            }
        }
        return lowers
    }

    /// `create --storage=overlay`: makes sure every layer is in the cache (extracting the missing
    /// ones once), then creates the container in O(1): a few directories and small files.
    public func createOverlayContainer(
        from image: LocalImageName, name: String? = nil,
        warn: (OutputWarning) -> Void = { _ in }
    ) throws -> String {
        try publishNewContainer(from: image, name: name) { contents, staging in
            guard contents.isV2, let config = try? JSONDecoder().decode(ImageConfig.self, from: Data(contents.configBytes)),
                let diffIDs = config.rootfs?.diffIDs, diffIDs.count == contents.layerFiles.count, !diffIDs.isEmpty
            else {
                throw StoreError("overlay storage needs an image whose config lists rootfs.diff_ids; use --storage=flat")
            }
            try layerCache.ensure(Array(zip(diffIDs, contents.layerFiles)), warn: warn)
            // The staging path is longer than the final one, so this bound also holds after the rename.
            let layout = OverlayLayout(
                cacheDirectory: layerCache.directory, lowers: diffIDs.map(\.hex), upper: "\(staging)/upper", work: "\(staging)/work")
            guard layout.fitsOneMount else {
                throw StoreError("the image has too many layers for an overlay mount; use --storage=flat")
            }
            for d in ["ROOT", "upper", "work"] {
                try syscall("mkdir", path: "\(staging)/\(d)") { mkdir("\(staging)/\(d)", 0o755) }
            }
            try AtomicFile.write(diffIDs.map(\.hex).joined(separator: "\n") + "\n", to: "\(staging)/lowers")
            try ContainerMetadata.writeMode(.N1, directory: staging, root: nil)
        }
    }

    /// `create` with the chosen storage.
    public func createContainer(
        from image: LocalImageName, name: String? = nil, storage: ContainerStorage,
        warn: (OutputWarning) -> Void = { _ in }
    ) throws -> String {
        switch storage {
        case .flat: return try createContainer(from: image, name: name, warn: warn)
        case .overlay: return try createOverlayContainer(from: image, name: name, warn: warn)
        }
    }

    /// Removes cache entries no overlay container uses (`rmi --prune`; never removes a layer in
    /// use: holds the repository lock exclusively, so no create is running).
    @discardableResult
    public func pruneLayerCache() throws -> [String] {
        try withLock(.exclusive) { try pruneLayerCacheLocked() }
    }

    /// The same, for a caller that already holds the repository lock exclusively.
    func pruneLayerCacheLocked() throws -> [String] {
        var removed: [String] = []
        for p in unusedCacheEntries() {
            try FileTree.remove(p)
            removed.append(p)
        }
        return removed
    }

    /// Cache entries no overlay container lists, their per-layer lock files, and staging
    /// directories (only abandoned ones exist while the repository lock is held exclusively: every
    /// create holds it shared while it fills the cache).
    func unusedCacheEntries() -> [String] {
        let used = LayerCache.referenced(containersDirectory: containersDirectory)
        return FileInfo.list(layerCache.directory).sorted().compactMap { name in
            let p = "\(layerCache.directory)/\(name)"
            if name.hasPrefix(".staging-") { return p }
            if name.hasPrefix("."), name.hasSuffix(".lock") { return used.contains(String(name.dropFirst().dropLast(5))) ? nil : p }
            return name.hasPrefix(".") || used.contains(name) ? nil : p
        }
    }
}
