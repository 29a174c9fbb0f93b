#ifndef CLINUX_FSUTIL_H
#define CLINUX_FSUTIL_H
// Small Linux filesystem wrappers for calls Swift's Glibc import cannot make directly
// (variadic syscall(2), flag combinations hidden behind _GNU_SOURCE, struct dirent access).
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <dirent.h>

/// Linux O_PATH (hidden from Swift's Glibc import, which lacks _GNU_SOURCE). Same value on
/// x86, arm, arm64, ppc, s390x and riscv.
#define CL_O_PATH 010000000

#define CL_RESOLVE_NO_XDEV       0x01
#define CL_RESOLVE_NO_MAGICLINKS 0x02
#define CL_RESOLVE_NO_SYMLINKS   0x04
#define CL_RESOLVE_BENEATH       0x08
#define CL_RESOLVE_IN_ROOT       0x10

/// openat2(2) through syscall(SYS_openat2). Returns the fd, or -1 with errno (ENOSYS on kernels < 5.6).
int cl_openat2(int dirfd, const char *path, uint64_t flags, uint64_t mode, uint64_t resolve);

/// 1 when openat2 with RESOLVE_IN_ROOT works on this kernel, 0 otherwise (probed once).
int cl_have_openat2(void);

/// mknodat / mkfifoat without the variadic-free worries.
int cl_mknodat(int dirfd, const char *path, mode_t mode, unsigned int major, unsigned int minor);
int cl_mkfifoat(int dirfd, const char *path, mode_t mode);

/// fchmodat that never follows a final symlink: AT_SYMLINK_NOFOLLOW, falling back to an
/// O_PATH|O_NOFOLLOW open and a no-op for symlinks (Linux cannot chmod a symlink).
/// Returns 0, or -1 with errno.
int cl_fchmodat_nofollow(int dirfd, const char *path, mode_t mode);

/// utimensat with explicit seconds/nanoseconds; atime is left unchanged (UTIME_OMIT).
/// `nofollow` != 0 adds AT_SYMLINK_NOFOLLOW. path NULL means the fd itself (futimens).
int cl_set_mtime(int dirfd, const char *path, int64_t sec, int64_t nsec, int nofollow);
/* Starts writeback of a byte range (sync_file_range SYNC_FILE_RANGE_WRITE): no wait, no durability. */
int cl_start_writeback(int fd, int64_t offset, int64_t length);
/// Sets both atime and mtime (used to restore a directory's times).
int cl_set_times(int fd, int64_t asec, int64_t ansec, int64_t msec, int64_t mnsec);

/// renameat2(2) (flags: 1 = RENAME_NOREPLACE, 2 = RENAME_EXCHANGE).
int cl_renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, unsigned int flags);

/// The name and type of a directory entry (d_name / d_type are awkward to reach from Swift).
const char *cl_dirent_name(const struct dirent *entry);
unsigned char cl_dirent_type(const struct dirent *entry);

/// The process umask, read without changing it (from /proc/self/status; falls back to umask(2) twice).
mode_t cl_current_umask(void);

/// memmem(3) (a GNU extension the Swift Glibc module does not export): non-zero when `needle`
/// occurs in `haystack`.
int cl_memmem_found(const void *haystack, size_t haystack_len, const void *needle, size_t needle_len);

/// Drops CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH and CAP_FOWNER from the *calling thread only*
/// (capset affects one thread). Used by tests running as root to check permission handling.
int cl_thread_drop_dac_caps(void);

/// ioctl(dst, FICLONE, src): makes dst share src's extents (btrfs, XFS, bcachefs, OCFS2...).
/// Returns 0, or -1 with errno (EOPNOTSUPP, EXDEV, EINVAL where the filesystem cannot).
int cl_ficlone(int src, int dst);

/// statfs(2) f_type of the filesystem holding `path` (its magic number), or -1 with errno.
long long cl_fs_type(const char *path);

#endif
