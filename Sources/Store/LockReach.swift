import CLinux
import UDockerSystem
#if canImport(Glibc)
import Glibc
#endif

/// Whether an `flock` taken on a filesystem excludes every other process that can open the file,
/// or only those on this node. A shared `<blob>.partial` is written only under a lock that reaches
/// every puller; on a filesystem whose locks are node-local (Lustre mounted `localflock`, BeeGFS
/// without `tuneUseGlobalFileLocks`, NFS with `local_lock=flock|all`, FUSE and anything unknown),
/// each puller writes a private partial and publishes with `RENAME_NOREPLACE` instead: the cost is
/// bandwidth (two nodes may fetch one blob), never a blob written by two nodes at once.
public enum LockReach: Equatable, Sendable {
    case everyPuller, thisNodeOnly

    /// `statfs` magic numbers (linux/magic.h and the filesystems' own headers).
    public enum Magic {
        public static let ext4: UInt = 0xEF53, xfs: UInt = 0x5846_5342, btrfs: UInt = 0x9123_683E
        public static let tmpfs: UInt = 0x0102_1994, ramfs: UInt = 0x8584_58F6, zfs: UInt = 0x2FC1_2FC1
        public static let f2fs: UInt = 0xF2F5_2010, overlay: UInt = 0x794C_7630, reiserfs: UInt = 0x5265_4973
        public static let gpfs: UInt = 0x4750_4653, ceph: UInt = 0x00C3_6400, lustre: UInt = 0x0BD0_0BD0
        public static let nfs: UInt = 0x6969, beegfs: UInt = 0x1983_0326, fuse: UInt = 0x6573_5546
    }

    /// The decision: `type` is `statfs.f_type`, `options` the mount's options (per-mount and
    /// superblock, from /proc/self/mountinfo).
    public static func of(filesystemType type: UInt, options: [String]) -> LockReach {
        switch type {
        case Magic.ext4, Magic.xfs, Magic.btrfs, Magic.tmpfs, Magic.ramfs, Magic.zfs, Magic.f2fs, Magic.overlay,
            Magic.reiserfs:
            return .everyPuller  // one kernel sees every opener
        case Magic.gpfs, Magic.ceph:
            return .everyPuller  // cluster-wide flock
        case Magic.lustre:
            // `flock` is coherent across clients; `localflock` is per client; `noflock` refuses
            // (handled by the ENOLCK path). Without an explicit `flock`, do not trust it.
            return options.contains("flock") && !options.contains("localflock") ? .everyPuller : .thisNodeOnly
        case Magic.nfs:
            return options.contains { $0 == "local_lock=flock" || $0 == "local_lock=all" } ? .thisNodeOnly : .everyPuller
        default:
            return .thisNodeOnly  // BeeGFS, FUSE, anything unknown
        }
    }

    /// The reach of locks in `directory`: its filesystem type, and for Lustre and NFS the options
    /// of the mount holding it.
    public static func of(directory: String) -> LockReach {
        let magic = cl_fs_type(directory)
        guard magic >= 0 else { return .thisNodeOnly }
        let type = UInt(magic)
        guard type == Magic.lustre || type == Magic.nfs else { return of(filesystemType: type, options: []) }
        var st = stat()
        guard stat(directory, &st) == 0 else { return .thisNodeOnly }
        return of(filesystemType: type, options: mountOptions(device: st.st_dev))
    }

    /// The per-mount and superblock options of the mount whose device is `device`.
    static func mountOptions(device: dev_t) -> [String] {
        let d = UInt64(device)
        let major = ((d >> 8) & 0xfff) | ((d >> 32) & ~UInt64(0xfff)), minor = (d & 0xff) | ((d >> 12) & ~UInt64(0xff))
        let want = "\(major):\(minor)"
        guard let text = AtomicFile.readString("/proc/self/mountinfo") else { return [] }
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count > 6, fields[2] == want, let dash = fields.firstIndex(of: "-") else { continue }
            var options = fields[5].split(separator: ",").map(String.init)
            if fields.count > dash + 3 { options += fields[dash + 3].split(separator: ",").map(String.init) }
            return options
        }
        return []
    }
}
