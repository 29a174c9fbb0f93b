import OCI

/// What the repository records about one container, read from `containers/<id>/` and validated:
/// the directory may come from a shared repository or a clone, so a field that does not parse is
/// reported as such (`invalidMode`), never taken as udocker's state.
public struct ContainerRecord: Sendable {
    public var id: String
    public var names: [String]
    /// `containers/<id>`.
    public var directory: String
    /// `containers/<id>/ROOT`: the tree (flat), or the overlay's mount point.
    public var root: String
    /// How ROOT is made (`lowers` present: overlay). Its layers are read and checked by
    /// `runnable`, which fills `overlay`.
    public var storage: ContainerStorage
    /// `imagerepo.name`: the image it was created from (`IMPORTED:unknown` for imports); "" if none.
    public var image: String
    public var protected: Bool
    /// udocker's `M` column: W writable ROOT, R read-only, N missing, D not a directory.
    public var rootState: Character
    /// `execmode`; nil when none is recorded (or when it is invalid).
    public var mode: ExecutionMode?
    /// The text of an `execmode` that is not a mode (at most 16 characters), for messages.
    public var invalidMode: String?
    /// `container.json`, checked (`runnable` only; nil in listings or when the container has none).
    public var config: ImageConfig?
    /// The overlay of an overlay container, its metadata checked (`runnable` only).
    public var overlay: OverlayLayout?

    public init(
        id: String, names: [String], directory: String, root: String, storage: ContainerStorage, image: String,
        protected: Bool, rootState: Character, mode: ExecutionMode?, invalidMode: String?,
        config: ImageConfig? = nil, overlay: OverlayLayout? = nil
    ) {
        self.id = id; self.names = names; self.directory = directory; self.root = root; self.storage = storage
        self.image = image; self.protected = protected; self.rootState = rootState; self.mode = mode
        self.invalidMode = invalidMode; self.config = config; self.overlay = overlay
    }
}

/// An overlay container's ROOT: layer directories of the shared cache (lowers) under the
/// container's own `upper/` (its changes) and `work/`.
public struct OverlayLayout: Sendable, Equatable {
    /// The layer cache (`layers/cache`); the lowerdirs of `options` are relative to it.
    public var cacheDirectory: String
    /// Layer ids (DiffID hex), base first.
    public var lowers: [String]
    public var upper: String
    public var work: String

    public init(cacheDirectory: String, lowers: [String], upper: String, work: String) {
        self.cacheDirectory = cacheDirectory; self.lowers = lowers; self.upper = upper; self.work = work
    }

    /// The overlayfs option string (its one builder): lowerdirs top first, relative to the cache
    /// directory (keeps it short), `userxattr` for a user namespace.
    public var options: String {
        "lowerdir=\(lowers.reversed().joined(separator: ":")),upperdir=\(upper),workdir=\(work),userxattr"
    }

    /// The kernel takes at most one page of mount options.
    public var fitsOneMount: Bool { options.utf8.count < 4096 }
}

/// `ps` lists records.
public typealias ContainerListing = ContainerRecord

/// How `create` stores a container.
public enum ContainerStorage: String, Sendable, CaseIterable {
    /// udocker-compatible: the image flattened into `containers/<id>/ROOT` (every engine).
    case flat
    /// overlayfs of the shared layer cache plus a private `upper/` (N1 only until `setup` makes it flat).
    case overlay

    /// The default when neither `--storage` nor `UDOCKER_CONTAINER_STORAGE` / `container_storage` says.
    public static let defaultStorage: ContainerStorage = .flat
}
