import CLinux
#if canImport(Glibc)
import Glibc
#endif

/// Copying a file's content between open descriptors, sharing extents where the filesystem can.
public enum FileClone {
    /// A reflink (`ioctl(FICLONE)`): O(1), and the copy is independent of the source from then on
    /// (copy-on-write). False where the filesystem cannot (ext4, tmpfs, NFS, another filesystem).
    public static func reflink(from src: Int32, to dst: Int32) -> Bool { cl_ficlone(src, dst) == 0 }
}
