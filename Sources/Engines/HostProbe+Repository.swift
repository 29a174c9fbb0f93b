import FoundationEssentials
import UDockerSystem
#if canImport(Glibc)
import Glibc
#endif

/// The repository: writable, free space and inodes, and its filesystem (parallel and network
/// filesystems get a warning about metadata load and locks).
public struct RepositoryCheck: HostCheck {
    public init() {}

    /// Filesystems where many small files and locks are expensive or unreliable.
    static let shared: Set<String> = ["nfs", "nfs4", "lustre", "gpfs", "beegfs", "ceph", "cifs", "smb3", "9p", "fuse", "glusterfs"]
    static let minimumFreeBytes: UInt64 = 1 << 30
    static let minimumFreeInodes: UInt64 = 100_000

    public func run(_ context: HostCheckContext) -> [HostFinding] {
        // The repository, or the nearest existing parent (it is created on first use).
        var dir = context.repository
        while !FileManager.default.fileExists(atPath: dir), dir != "/" { dir = PathName.parent(dir) }
        var facts = ["repository \(context.repository)" + (dir == context.repository ? "" : " (not created yet; checked \(dir))")]
        var vfs = statvfs()
        guard statvfs(dir, &vfs) == 0 else {
            return [
                HostFinding(
                    check: "repository", status: .failed, summary: "cannot stat \(dir): \(String(cString: strerror(errno)))", details: facts
                )
            ]
        }
        let type = Self.filesystemType(of: dir) ?? "unknown"
        let freeBytes = UInt64(vfs.f_bavail) * UInt64(vfs.f_frsize)
        let freeInodes = UInt64(vfs.f_favail)
        facts.append("filesystem \(type)")
        facts.append("free: \(Self.size(freeBytes)), \(vfs.f_files == 0 ? "inodes not limited" : "\(freeInodes) inodes")")
        if access(dir, W_OK) != 0 || (vfs.f_flag & UInt(ST_RDONLY)) != 0 {
            return [
                HostFinding(
                    check: "repository", status: .failed, summary: "\(dir) is not writable", details: facts,
                    fix: "choose a writable place: export UDOCKER_DIR=/path (or --repo=DIR)")
            ]
        }
        var warnings: [String] = []
        var fixes: [String] = []
        if freeBytes < Self.minimumFreeBytes {
            warnings.append("less than 1 GiB free")
            fixes.append("free space (udocker rmi --prune) or move UDOCKER_DIR")
        }
        if vfs.f_files != 0 && freeInodes < Self.minimumFreeInodes {
            warnings.append("fewer than 100000 free inodes (an image has ~10k files)")
            fixes.append("move UDOCKER_DIR to a filesystem with free inodes")
        }
        if Self.shared.contains(type) || type.hasPrefix("fuse.") {
            warnings.append(
                "\(type) is a network/parallel filesystem: creating containers puts heavy metadata load on it, "
                    + "locks may be slow or node-local, overlay containers cannot use it")
            fixes.append("keep images there if you must, but prefer a node-local disk for containers (UDOCKER_CONTAINERS=/local/path)")
        }
        if warnings.isEmpty {
            return [
                HostFinding(check: "repository", status: .ok, summary: "writable, \(type), \(Self.size(freeBytes)) free", details: facts)
            ]
        }
        return [
            HostFinding(
                check: "repository", status: .warning, summary: warnings.joined(separator: "; "), details: facts,
                fix: fixes.joined(separator: "; "))
        ]
    }

    /// The type of the mount holding `path` (the longest mount point above its real path), from
    /// /proc/self/mountinfo: "ext4", "nfs4", "lustre", "gpfs", "beegfs", "fuse.sshfs", …
    static func filesystemType(of path: String) -> String? {
        guard let real = realpath(path, nil) else { return nil }
        let resolved = String(cString: real)
        free(real)
        guard let info = try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8) else { return nil }
        var best: (length: Int, type: String)?
        for line in info.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: false)
            guard fields.count > 7, let dash = fields.firstIndex(of: "-"), dash + 1 < fields.count else { continue }
            let mountPoint = String(fields[4]).replacing("\\040", with: " ")
            guard PathName.isUnder(resolved, mountPoint) else { continue }
            if best == nil || mountPoint.count >= best!.length { best = (mountPoint.count, String(fields[dash + 1])) }
        }
        return best?.type
    }

    static func size(_ bytes: UInt64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
        var v = Double(bytes), i = 0
        while v >= 1024 && i < units.count - 1 { v /= 1024; i += 1 }
        return i == 0 ? "\(bytes) B" : Format.fixed(v) + " " + units[i]
    }
}
