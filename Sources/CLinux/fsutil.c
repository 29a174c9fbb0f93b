#define _GNU_SOURCE
#include "fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <sys/ioctl.h>
#include <linux/fs.h>
#include <unistd.h>
#include <linux/openat2.h>
#include <linux/capability.h>

_Static_assert(CL_O_PATH == O_PATH, "CL_O_PATH must equal O_PATH on this architecture");

int cl_openat2(int dirfd, const char *path, uint64_t flags, uint64_t mode, uint64_t resolve) {
#ifdef SYS_openat2
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = flags;
    how.mode = mode;
    how.resolve = resolve;
    long r;
    do { r = syscall(SYS_openat2, dirfd, path, &how, sizeof how); } while (r < 0 && errno == EINTR);
    return (int)r;
#else
    (void)dirfd; (void)path; (void)flags; (void)mode; (void)resolve;
    errno = ENOSYS;
    return -1;
#endif
}

int cl_have_openat2(void) {
    static int cached = -1;
    int v = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (v >= 0) return v;
    int fd = cl_openat2(AT_FDCWD, "/", O_PATH | O_DIRECTORY | O_CLOEXEC, 0, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS);
    v = fd >= 0;
    if (fd >= 0) close(fd);
    __atomic_store_n(&cached, v, __ATOMIC_RELAXED);
    return v;
}

int cl_mknodat(int dirfd, const char *path, mode_t mode, unsigned int major, unsigned int minor) {
    return mknodat(dirfd, path, mode, makedev(major, minor));
}

int cl_mkfifoat(int dirfd, const char *path, mode_t mode) {
    return mkfifoat(dirfd, path, mode);
}

int cl_fchmodat_nofollow(int dirfd, const char *path, mode_t mode) {
    if (fchmodat(dirfd, path, mode, AT_SYMLINK_NOFOLLOW) == 0) return 0;
    if (errno != ENOTSUP && errno != EOPNOTSUPP && errno != ENOSYS) return -1;
    // Old glibc/kernel: open the entry itself without following it.
    int fd = openat(dirfd, path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return -1;
    struct stat st;
    if (fstat(fd, &st) != 0) { int e = errno; close(fd); errno = e; return -1; }
    if (S_ISLNK(st.st_mode)) { close(fd); return 0; }   // symlink modes are meaningless on Linux
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    int r = chmod(proc, mode);
    int e = errno;
    close(fd);
    errno = e;
    return r;
}

int cl_set_mtime(int dirfd, const char *path, int64_t sec, int64_t nsec, int nofollow) {
    struct timespec ts[2];
    ts[0].tv_sec = 0; ts[0].tv_nsec = UTIME_OMIT;
    ts[1].tv_sec = (time_t)sec; ts[1].tv_nsec = (long)nsec;
    if (!path) return futimens(dirfd, ts);   // glibc's utimensat rejects a NULL path
    return utimensat(dirfd, path, ts, nofollow ? AT_SYMLINK_NOFOLLOW : 0);
}

int cl_set_times(int fd, int64_t asec, int64_t ansec, int64_t msec, int64_t mnsec) {
    struct timespec ts[2];
    ts[0].tv_sec = (time_t)asec; ts[0].tv_nsec = (long)ansec;
    ts[1].tv_sec = (time_t)msec; ts[1].tv_nsec = (long)mnsec;
    return futimens(fd, ts);
}

int cl_renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, unsigned int flags) {
#ifdef SYS_renameat2
    return (int)syscall(SYS_renameat2, olddirfd, oldpath, newdirfd, newpath, flags);
#else
    if (flags != 0) { errno = ENOSYS; return -1; }
    return renameat(olddirfd, oldpath, newdirfd, newpath);
#endif
}

const char *cl_dirent_name(const struct dirent *entry) { return entry->d_name; }
unsigned char cl_dirent_type(const struct dirent *entry) { return entry->d_type; }

int cl_memmem_found(const void *haystack, size_t haystack_len, const void *needle, size_t needle_len) {
    return memmem(haystack, haystack_len, needle, needle_len) != NULL;
}

mode_t cl_current_umask(void) {
    FILE *f = fopen("/proc/self/status", "re");
    if (f) {
        char line[256];
        while (fgets(line, sizeof line, f)) {
            unsigned int m;
            if (sscanf(line, "Umask: %o", &m) == 1) { fclose(f); return (mode_t)m; }
        }
        fclose(f);
    }
    mode_t m = umask(022);
    umask(m);
    return m;
}

int cl_thread_drop_dac_caps(void) {
    struct __user_cap_header_struct hdr;
    struct __user_cap_data_struct data[2];
    memset(&hdr, 0, sizeof hdr);
    memset(data, 0, sizeof data);
    hdr.version = _LINUX_CAPABILITY_VERSION_3;
    hdr.pid = 0;
    if (syscall(SYS_capget, &hdr, data) != 0) return -1;
    unsigned int drop = (1u << CAP_DAC_OVERRIDE) | (1u << CAP_DAC_READ_SEARCH) | (1u << CAP_FOWNER);
    data[0].effective &= ~drop;
    return (int)syscall(SYS_capset, &hdr, data);
}

int cl_start_writeback(int fd, int64_t offset, int64_t length) {
    return sync_file_range(fd, (off64_t)offset, (off64_t)length, SYNC_FILE_RANGE_WRITE);
}

int cl_ficlone(int src, int dst) {
#ifdef FICLONE
    return ioctl(dst, FICLONE, src);
#else
    errno = EOPNOTSUPP;
    return -1;
#endif
}

long long cl_fs_type(const char *path) {
    struct statfs sf;
    if (statfs(path, &sf) != 0) return -1;
    return (long long)(unsigned int)sf.f_type;
}
