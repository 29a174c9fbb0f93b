import Crypto
import FoundationEssentials
import OCI
import UDockerSystem
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The one owner of how blobs enter `layers/`: the final name (`<algo>:<hex>`, udocker's
/// naming), the `<name>.partial` download file and its lock, publication, and what counts as an
/// abandoned partial for `rmi --prune`. The registry client streams into an `IngestSession`;
/// `pull` stores the config and `load` moves its staged blobs through here too.
///
/// Pulls are lockless across processes: each blob streams into `<name>.partial` held under an
/// exclusive `flock`, so concurrent pullers never write the same file; where the filesystem refuses
/// locks each puller writes a private partial instead (see `IngestSession`); publication never
/// replaces a verified blob another process published first (`renameat2(RENAME_NOREPLACE)`).
public struct BlobIngest: BlobStore {
    public let directory: String
    /// Whether a lock here reaches every puller; nil = ask the filesystem (`LockReach`).
    let lockReach: LockReach?

    public init(directory: String, lockReach: LockReach? = nil) { self.directory = directory; self.lockReach = lockReach }

    public func path(of digest: OCI.Digest) -> String { "\(directory)/\(digest.fileName)" }

    public func contains(_ digest: OCI.Digest, size: Int64? = nil) -> Bool {
        guard let have = IngestSession.size(of: path(of: digest)) else { return false }
        return size == nil || have == size
    }

    /// An ingest session for `blob`, or nil when a blob of the right size is already published
    /// (by us earlier, or by another process while we waited for its lock).
    public func writer(for blob: Descriptor, onWait: @Sendable () -> Void) async throws -> (any BlobWriter)? {
        try await session(for: blob, onWait: onWait)
    }

    public func session(for blob: Descriptor, onWait: () -> Void) async throws -> IngestSession? {
        guard blob.size >= 0 else { throw StoreError("negative size for \(blob.digest)") }
        let final = path(of: blob.digest)
        if IngestSession.size(of: final) == blob.size { return nil }
        if (lockReach ?? LockReach.of(directory: directory)) == .thisNodeOnly {
            return try IngestSession.openPrivate(final + ".partial", final: final, directory: directory, size: blob.size)
        }
        return try await IngestSession.openLocked(
            final + ".partial", final: final, directory: directory,
            size: blob.size, onWait: onWait)
    }

    /// Stores a small blob that is already in memory (the image config `pull` fetched while
    /// resolving) after checking its size and digest, unless it is there already.
    public func store(_ bytes: [UInt8], as blob: Descriptor) throws {
        guard Int64(bytes.count) == blob.size else {
            throw StoreError("size mismatch for \(blob.digest): expected \(blob.size) bytes, got \(bytes.count)")
        }
        let actual: OCI.Digest
        switch blob.digest.algorithm {
        case "sha256": actual = OCI.Digest.sha256(of: bytes)
        case "sha512":
            actual = try OCI.Digest(algorithm: "sha512", hex: Format.hex(SHA512.hash(data: bytes)))
        default: throw StoreError("unsupported digest algorithm \(blob.digest.algorithm)")
        }
        guard actual == blob.digest else { throw StoreError("digest mismatch for \(blob.digest): got \(actual)") }
        let final = path(of: blob.digest)
        if !FileInfo.isRegularFile(final) { try AtomicFile.write(bytes, to: final) }
    }

    /// Moves a verified file (staged by `load`) into place as `digest`. Returns the published
    /// path, or nil when the blob was already there (the file is then left where it was, or was
    /// the same blob moved a moment ago).
    public func adopt(_ file: String, as digest: OCI.Digest) throws -> String? {
        let dst = path(of: digest)
        if FileInfo.isRegularFile(dst) { return nil }
        if rename(file, dst) != 0 {
            guard errno == ENOENT, FileInfo.isRegularFile(dst) else { throw SystemError("rename", path: dst) }
            return nil  // the same blob twice in one archive: already moved
        }
        return dst
    }

    /// A fresh name for a download that is not a blob yet (`import URL`'s tarball): on the blob
    /// directory's filesystem, removed by its user; prune removes a leftover after its grace period.
    public func scratchPath() -> String { "\(directory)/.download-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).partial" }

    public static func isScratch(_ name: String) -> Bool { name.hasPrefix(".download-") }

    /// Whether `name` in the blob directory is a download in progress or left by an interrupted one.
    public static func isPartial(_ name: String) -> Bool { name.hasSuffix(".partial") }

    /// A `.partial` download is abandoned when no puller holds its flock.
    public static func partialIsAbandoned(_ path: String) -> Bool {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        return flock(fd, LOCK_EX | LOCK_NB) == 0
    }
}
