/*
 * glibc-compat.c: the symbols that udocker's prebuilt static archives reference but glibc 2.28
 * lacks, linked into the dist binary by scripts/zig-link/clang (docs/portable-binary.md).
 *
 * The Swift runtime, libstdc++.a, swift-crypto's BoringSSL and our own C target are compiled
 * against the build host's glibc (2.36 on Debian 12). Their calls to functions that newer glibc
 * versions export under a new name or version are resolved here, in terms of interfaces that
 * glibc 2.28 has (or of the system call itself), so the loader of an older system finds nothing
 * it lacks. Compiled by zig for x86_64-linux-gnu.2.28, with 2.28's headers: no header that
 * declares the functions defined here is included.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

/* glibc 2.32: libstdc++ reads it to skip atomic reference counting in a single-threaded
 * process. 0 = "maybe multi-threaded", always correct (only slower in a single thread). */
char __libc_single_threaded = 0;

/* glibc 2.33 turned stat, fstat, lstat, fstatat and mknodat into plain exported functions; before,
 * the headers called the versioned __xstat family (_STAT_VER_LINUX = 1, _MKNOD_VER_LINUX = 0). */
struct stat;
struct stat64;
extern int __xstat(int, const char *, struct stat *);
extern int __lxstat(int, const char *, struct stat *);
extern int __fxstat(int, int, struct stat *);
extern int __fxstatat(int, int, const char *, struct stat *, int);
extern int __xstat64(int, const char *, struct stat64 *);
extern int __lxstat64(int, const char *, struct stat64 *);
extern int __fxstat64(int, int, struct stat64 *);
extern int __fxstatat64(int, int, const char *, struct stat64 *, int);
extern int __xmknod(int, const char *, unsigned int, unsigned long *);
extern int __xmknodat(int, int, const char *, unsigned int, unsigned long *);

int stat(const char *path, struct stat *buf) { return __xstat(1, path, buf); }
int lstat(const char *path, struct stat *buf) { return __lxstat(1, path, buf); }
int fstat(int fd, struct stat *buf) { return __fxstat(1, fd, buf); }
int fstatat(int dirfd, const char *path, struct stat *buf, int flags) { return __fxstatat(1, dirfd, path, buf, flags); }
int stat64(const char *path, struct stat64 *buf) { return __xstat64(1, path, buf); }
int lstat64(const char *path, struct stat64 *buf) { return __lxstat64(1, path, buf); }
int fstat64(int fd, struct stat64 *buf) { return __fxstat64(1, fd, buf); }
int fstatat64(int dirfd, const char *path, struct stat64 *buf, int flags) { return __fxstatat64(1, dirfd, path, buf, flags); }
int mknod(const char *path, unsigned int mode, unsigned long dev) { return __xmknod(0, path, mode, &dev); }
int mknodat(int dirfd, const char *path, unsigned int mode, unsigned long dev) { return __xmknodat(0, dirfd, path, mode, &dev); }

/* glibc 2.36: arc4random (libstdc++'s std::random_device, the Swift runtime's random numbers).
 * getrandom(2) blocks only until the kernel's pool is first initialised, as arc4random does. */
static void fill_random(void *buf, size_t len) {
    unsigned char *p = buf;
    while (len > 0) {
        long n = syscall(SYS_getrandom, p, len, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            /* No getrandom (kernel < 3.17) or a seccomp filter: there is no safe fallback that
             * cannot fail, and arc4random must not fail. */
            static const char msg[] = "udocker: getrandom(2) failed: no source of random numbers\n";
            (void)!write(2, msg, sizeof msg - 1);
            _exit(127);
        }
        p += n;
        len -= (size_t)n;
    }
}

void arc4random_buf(void *buf, size_t len) { fill_random(buf, len); }

uint32_t arc4random(void) {
    uint32_t value;
    fill_random(&value, sizeof value);
    return value;
}

uint32_t arc4random_uniform(uint32_t upper) {
    if (upper < 2) return 0;
    /* Rejection sampling: values below 2^32 mod upper would bias the result. */
    uint32_t min = (uint32_t)(-upper) % upper;
    for (;;) {
        uint32_t r = arc4random();
        if (r >= min) return r % upper;
    }
}

/* glibc 2.29: referenced by CoreFoundation's CFPlatform.c (Foundation's `Process` with a working
 * directory), which the static archive brings in with the object udocker does use. udocker starts
 * processes with its own posix_spawn code (UDockerSystem/Subprocess) and never through it; if
 * anything ever did, the spawn fails with ENOSYS instead of running in the wrong directory. */
int posix_spawn_file_actions_addchdir_np(void *actions, const char *path) {
    (void)actions;
    (void)path;
    return ENOSYS;
}
