import FoundationEssentials
import OCI
import UDockerSystem
#if canImport(Glibc)
import Glibc
#endif

/// A layer that fails at `create` (DiffID mismatch, or a stream that does not decode) may be a
/// blob that was published corrupt (a concurrent writer on a filesystem without working locks,
/// a disk error): `pull` trusts a present blob of the right size. Such a blob is removed here —
/// only if it no longer hashes to its own name — so that the next pull fetches it again.
public enum BlobEviction {
    /// `layerFile` is the layer as create read it (a link in the image's tag directory, or the
    /// blob itself); the blob must live directly in `layersDirectory` and be named
    /// `sha256:<hex>`. Returns one line for the user when the blob was removed.
    public static func evictIfCorrupt(_ layerFile: String, layersDirectory: String) -> String? {
        guard let resolved = realPath(layerFile), let layers = realPath(layersDirectory) else { return nil }
        let name = PathName.lastComponent(resolved)
        guard let expected = try? Digest(parsing: name), expected.algorithm == "sha256",
            PathName.parent(resolved) == layers,
            FileInfo.isRegularFile(resolved), !FileInfo.isSymlink(resolved),
            let actual = try? LocalRepository.sha256(ofFile: resolved), actual != expected
        else { return nil }
        guard unlink(resolved) == 0 else { return nil }
        return "removed the corrupt blob \(name) (its content hashes to \(actual)): pull the image again to fetch it"
    }

    static func realPath(_ path: String) -> String? {
        guard let p = realpath(path, nil) else { return nil }
        defer { free(p) }
        return String(cString: p)
    }

    /// An error message for a layer that failed, with the eviction note appended when it applied.
    static func explain(_ message: String, layerFile: String, layersDirectory: String) -> String {
        guard let note = evictIfCorrupt(layerFile, layersDirectory: layersDirectory) else { return message }
        return "\(message); \(note)"
    }
}
