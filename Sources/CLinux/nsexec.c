// Launching engine children; see include/nsexec.h. Everything in the child after fork() is
// async-signal-safe: raw system calls, no malloc, no stdio.
#define _GNU_SOURCE
#include "nsexec.h"

#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/vfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#ifndef SYS_openat2
#define SYS_openat2 437
#endif
#ifndef SYS_pivot_root
#define SYS_pivot_root 155
#endif
#ifndef RESOLVE_NO_MAGICLINKS
#define RESOLVE_NO_XDEV 0x01
#define RESOLVE_NO_MAGICLINKS 0x02
#define RESOLVE_NO_SYMLINKS 0x04
#define RESOLVE_BENEATH 0x08
#endif

struct ud_open_how { uint64_t flags; uint64_t mode; uint64_t resolve; };

// ---------------------------------------------------------------- small async-signal-safe helpers

static size_t ud_strlen(const char *s) { size_t n = 0; while (s && s[n]) n++; return n; }

// Appends `s` to buf (capacity cap, NUL-terminated), truncating.
static void ud_append(char *buf, size_t cap, const char *s) {
    size_t n = ud_strlen(buf);
    while (s && *s && n + 1 < cap) buf[n++] = *s++;
    buf[n] = 0;
}

static void ud_append_uint(char *buf, size_t cap, unsigned long v) {
    char tmp[24]; int i = 0;
    do { tmp[i++] = (char)('0' + v % 10); v /= 10; } while (v && i < 23);
    char out[24]; int j = 0;
    while (i) out[j++] = tmp[--i];
    out[j] = 0;
    ud_append(buf, cap, out);
}

static void ud_step(cl_exec_error_t *e, const char *a, const char *b, const char *c, const char *d) {
    e->step[0] = 0;
    ud_append(e->step, sizeof e->step, a);
    ud_append(e->step, sizeof e->step, b);
    ud_append(e->step, sizeof e->step, c);
    ud_append(e->step, sizeof e->step, d);
}

/* Reads the child's error report from the CLOEXEC status pipe: 0 bytes means the child reached
 * exec (or, for the overlay helper, is ready); a full record is an error; anything else is EIO. */
static size_t ud_read_status(int fd, cl_exec_error_t *error) {
    size_t got = 0;
    while (got < sizeof *error) {
        ssize_t r = read(fd, (char *)error + got, sizeof *error - got);
        if (r < 0) { if (errno == EINTR) continue; break; }
        if (r == 0) break;
        got += (size_t)r;
    }
    return got;
}

static int ud_write_all(int fd, const void *p, size_t n) {
    const char *c = p;
    while (n) {
        ssize_t w = write(fd, c, n);
        if (w < 0) { if (errno == EINTR) continue; return -1; }
        c += w; n -= (size_t)w;
    }
    return 0;
}

static int ud_write_file(const char *path, const char *text) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    int r = ud_write_all(fd, text, ud_strlen(text));
    int saved = errno;
    close(fd);
    errno = saved;
    return r;
}

static void ud_fd_path(char *buf, size_t cap, int fd) {
    buf[0] = 0;
    ud_append(buf, cap, "/proc/self/fd/");
    ud_append_uint(buf, cap, (unsigned long)fd);
}

static const int ud_forwarded[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 };
#define UD_NFORWARDED (sizeof ud_forwarded / sizeof ud_forwarded[0])

static const int ud_deferred[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };
#define UD_NDEFERRED (sizeof ud_deferred / sizeof ud_deferred[0])
static struct sigaction ud_deferred_old[UD_NDEFERRED];
static volatile sig_atomic_t ud_deferred_signal;

static void ud_defer_handler(int sig) {
    if (ud_deferred_signal == 0) ud_deferred_signal = sig;
}

void cl_signals_defer(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = ud_defer_handler;
    sigfillset(&sa.sa_mask);
    ud_deferred_signal = 0;
    for (size_t i = 0; i < UD_NDEFERRED; i++) (void)sigaction(ud_deferred[i], &sa, &ud_deferred_old[i]);
}

void cl_signals_release(void) {
    for (size_t i = 0; i < UD_NDEFERRED; i++) (void)sigaction(ud_deferred[i], &ud_deferred_old[i], NULL);
    int sig = ud_deferred_signal;
    ud_deferred_signal = 0;
    if (sig != 0) (void)kill(getpid(), sig);
}

// Every disposition back to default, every signal unblocked (dispositions set to "ignore" and the
// blocked mask would otherwise survive execve into the container).
static void ud_reset_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    sigemptyset(&sa.sa_mask);
    for (int s = 1; s < NSIG; s++) {
        if (s == SIGKILL || s == SIGSTOP) continue;
        (void)sigaction(s, &sa, NULL);
    }
    sigset_t none;
    sigemptyset(&none);
    (void)sigprocmask(SIG_SETMASK, &none, NULL);
}

// Marks every fd > 2 close-on-exec. The error pipe is already CLOEXEC.
static void ud_cloexec_all(void) {
    if (syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) == 0) return;
    struct rlimit rl;
    long max = 65536;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && (long)rl.rlim_cur < max)
        max = (long)rl.rlim_cur;
    for (int fd = 3; fd < max; fd++) {
        int flags = fcntl(fd, F_GETFD);
        if (flags >= 0 && !(flags & FD_CLOEXEC)) (void)fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
    }
}

// Opens `target` (absolute container path, already free of symlinks) beneath dirfd, refusing any
// symlink or ".." on the way. O_PATH, so it works for files and directories alike.
static int ud_open_beneath(int rootfd, const char *target) {
    while (*target == '/') target++;
    if (*target == 0) return fcntl(rootfd, F_DUPFD_CLOEXEC, 3);
    struct ud_open_how how;
    memset(&how, 0, sizeof how);
    how.flags = O_PATH | O_CLOEXEC | O_NOFOLLOW;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    long fd = syscall(SYS_openat2, rootfd, target, &how, sizeof how);
    if (fd >= 0 || (errno != ENOSYS && errno != EPERM)) return (int)fd;
    // Older kernel (or a seccomp filter refusing openat2): walk component by component.
    int cur = fcntl(rootfd, F_DUPFD_CLOEXEC, 3);
    if (cur < 0) return -1;
    char comp[256];
    const char *p = target;
    while (*p) {
        size_t n = 0;
        while (*p && *p != '/') { if (n + 1 >= sizeof comp) { close(cur); errno = ENAMETOOLONG; return -1; } comp[n++] = *p++; }
        comp[n] = 0;
        while (*p == '/') p++;
        if (n == 0 || (n == 1 && comp[0] == '.')) continue;
        if (n == 2 && comp[0] == '.' && comp[1] == '.') { close(cur); errno = EXDEV; return -1; }
        int next = openat(cur, comp, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        int saved = errno;
        close(cur);
        if (next < 0) { errno = saved; return -1; }
        struct stat st;
        if (fstat(next, &st) != 0) { saved = errno; close(next); errno = saved; return -1; }
        if (S_ISLNK(st.st_mode)) { close(next); errno = ELOOP; return -1; }
        if (*p && !S_ISDIR(st.st_mode)) { close(next); errno = ENOTDIR; return -1; }
        cur = next;
    }
    return cur;
}

// Enters new user + mount namespaces mapping the host ids to `uid`/`gid`, making / rprivate.
static int ud_enter_userns(unsigned int inside_uid, unsigned int inside_gid, unsigned int host_uid,
                           unsigned int host_gid, cl_exec_error_t *e) {
    char map[64];
    if (unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) { ud_step(e, "unshare(CLONE_NEWUSER|CLONE_NEWNS)", 0, 0, 0); return -1; }
    if (ud_write_file("/proc/self/setgroups", "deny") != 0 && errno != ENOENT) {
        ud_step(e, "write /proc/self/setgroups", 0, 0, 0); return -1;
    }
    map[0] = 0;
    ud_append_uint(map, sizeof map, inside_uid); ud_append(map, sizeof map, " ");
    ud_append_uint(map, sizeof map, host_uid); ud_append(map, sizeof map, " 1\n");
    if (ud_write_file("/proc/self/uid_map", map) != 0) { ud_step(e, "write /proc/self/uid_map: ", map, 0, 0); return -1; }
    map[0] = 0;
    ud_append_uint(map, sizeof map, inside_gid); ud_append(map, sizeof map, " ");
    ud_append_uint(map, sizeof map, host_gid); ud_append(map, sizeof map, " 1\n");
    if (ud_write_file("/proc/self/gid_map", map) != 0) { ud_step(e, "write /proc/self/gid_map: ", map, 0, 0); return -1; }
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) { ud_step(e, "make / rprivate", 0, 0, 0); return -1; }
    return 0;
}

// ---------------------------------------------------------------- child

// N1's namespace set-up: new user + mount namespaces, the root bound onto itself (or overlayfs),
// the binds beneath it, pivot into it. Returns 0, or -1 with e filled.
static int ud_setup_root(const cl_exec_config_t *c, cl_exec_error_t *e) {
    if (ud_enter_userns(c->inside_uid, c->inside_gid, c->host_uid, c->host_gid, e) != 0) return -1;
    if (c->overlay_options) {
        if (chdir(c->overlay_dir) != 0) { ud_step(e, "chdir ", c->overlay_dir, 0, 0); return -1; }
        if (mount("overlay", c->root, "overlay", 0, c->overlay_options) != 0) {
            ud_step(e, "mount overlayfs on ", c->root, 0, 0); return -1;
        }
    } else if (mount(c->root, c->root, NULL, MS_BIND | MS_REC, NULL) != 0) { ud_step(e, "bind ", c->root, " on itself", 0); return -1; }
    int rootfd = open(c->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0) { ud_step(e, "open ", c->root, 0, 0); return -1; }

    for (int i = 0; i < c->nmounts; i++) {
        const cl_mount_t *m = &c->mounts[i];
        int src = open(m->source, O_PATH | O_CLOEXEC);
        if (src < 0) { ud_step(e, "open ", m->source, 0, 0); return -1; }
        int dst = ud_open_beneath(rootfd, m->target);
        if (dst < 0) { ud_step(e, "open mountpoint ", m->target, " in the container", 0); return -1; }
        struct stat ss, ds;
        if (fstat(src, &ss) != 0 || fstat(dst, &ds) != 0) { ud_step(e, "stat ", m->source, 0, 0); return -1; }
        if (S_ISDIR(ss.st_mode) != S_ISDIR(ds.st_mode)) {
            errno = S_ISDIR(ss.st_mode) ? ENOTDIR : EISDIR;
            ud_step(e, "mount ", m->source, " on ", m->target); return -1;
        }
        char sp[40], dp[40];
        ud_fd_path(sp, sizeof sp, src);
        ud_fd_path(dp, sizeof dp, dst);
        if (mount(sp, dp, NULL, MS_BIND | MS_REC, NULL) != 0) { ud_step(e, "mount ", m->source, " on ", m->target); return -1; }
        if (m->read_only) {
            // Reopen the target: the earlier fd names the directory beneath the new mount, and
            // a remount through it would change the mount holding it (the root). In a user
            // namespace the remount must keep the flags the source mount locked.
            int top = ud_open_beneath(rootfd, m->target);
            struct statfs sf;
            if (top < 0 || fstatfs(top, &sf) != 0) { ud_step(e, "open mounted ", m->target, 0, 0); return -1; }
            unsigned long keep = 0;
            if (sf.f_flags & ST_NOSUID) keep |= MS_NOSUID;
            if (sf.f_flags & ST_NODEV) keep |= MS_NODEV;
            if (sf.f_flags & ST_NOEXEC) keep |= MS_NOEXEC;
            if (sf.f_flags & ST_NOATIME) keep |= MS_NOATIME;
            if (sf.f_flags & ST_NODIRATIME) keep |= MS_NODIRATIME;
            if (sf.f_flags & ST_RELATIME) keep |= MS_RELATIME;
            char tp[40];
            ud_fd_path(tp, sizeof tp, top);
            if (mount(NULL, tp, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | keep, NULL) != 0) {
                ud_step(e, "remount read-only ", m->target, 0, 0); return -1;
            }
            close(top);
        }
        close(src);
        close(dst);
    }

    if (fchdir(rootfd) != 0) { ud_step(e, "chdir ", c->root, 0, 0); return -1; }
    close(rootfd);
    if (syscall(SYS_pivot_root, ".", ".") == 0) {
        if (umount2(".", MNT_DETACH) != 0) { ud_step(e, "detach the old root", 0, 0, 0); return -1; }
    } else {
        // pivot_root is refused when / is the initramfs; fall back to move + chroot.
        if (mount(".", "/", NULL, MS_MOVE, NULL) != 0) { ud_step(e, "pivot_root ", c->root, 0, 0); return -1; }
        if (chroot(".") != 0) { ud_step(e, "chroot ", c->root, 0, 0); return -1; }
    }
    if (chdir("/") != 0) { ud_step(e, "chdir /", 0, 0, 0); return -1; }
    return 0;
}

// Returns only on failure, with e filled.
static void ud_child(const cl_exec_config_t *c, int own_group, pid_t parent, cl_exec_error_t *e) {
    // Own process group first (the parent does it too: no race), then the default dispositions
    // and an empty mask: a signal forwarded before this point is pending and now ends the child.
    if (own_group) (void)setpgid(0, 0);
    ud_reset_signals();
    for (int i = 0; i < 3; i++) {
        int fd = c->stdio_fds[i];
        if (fd > 2 && dup2(fd, i) < 0) { ud_step(e, "redirect standard I/O", 0, 0, 0); return; }
    }
    ud_cloexec_all();
    if (c->keep_fd > 2) {
        int flags = fcntl(c->keep_fd, F_GETFD);
        if (flags >= 0) (void)fcntl(c->keep_fd, F_SETFD, flags & ~FD_CLOEXEC);
    }

    if (c->cpus && c->ncpus > 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        for (int i = 0; i < c->ncpus; i++)
            if (c->cpus[i] >= 0 && c->cpus[i] < CPU_SETSIZE) CPU_SET(c->cpus[i], &set);
        if (sched_setaffinity(0, sizeof set, &set) != 0) { ud_step(e, "set CPU affinity", 0, 0, 0); return; }
    }

    if (c->join) {
        // A rank of a joined job step: the holder made the namespaces (same owner: allowed).
        if (setns(c->join_user_fd, CLONE_NEWUSER) != 0) { ud_step(e, "join the job step's user namespace", 0, 0, 0); return; }
        if (setns(c->join_mnt_fd, CLONE_NEWNS) != 0) { ud_step(e, "join the job step's mount namespace", 0, 0, 0); return; }
        if (chdir("/") != 0) { ud_step(e, "chdir /", 0, 0, 0); return; }
    } else if (c->use_userns) {
        if (ud_setup_root(c, e) != 0) return;
    }

    if (c->cwd && c->cwd[0] && chdir(c->cwd) != 0) { ud_step(e, "chdir ", c->cwd, 0, 0); return; }
    // Killed with us: a udocker ended by SIGKILL (or OOM) leaves no container running. Set last
    // (credential changes clear it); a parent already gone means we were orphaned meanwhile.
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) { ud_step(e, "set the parent-death signal", 0, 0, 0); return; }
    if (getppid() != parent) _exit(128 + SIGKILL);
    execve(c->path, c->argv, c->envp);
    ud_step(e, "execute ", c->path, 0, 0);
}

// ---------------------------------------------------------------- forwarding table

// Every child being started or waited for has a slot: 0 free, -1 reserved (fork not returned
// yet), > 0 its pid. The handlers are installed with the first slot and restored with the last.
// A signal that finds a slot reserved is parked in `pending` and delivered by whoever sees the
// pid first (the spawner after publishing it, or the handler on re-reading it): both take it
// with an atomic exchange, so it is delivered once. Several threads may spawn and wait at once
// (tests); a signal is forwarded to every child.
#define UD_MAX_WAITERS 64
static pid_t ud_forward_pids[UD_MAX_WAITERS];
static int ud_forward_group[UD_MAX_WAITERS];
static int ud_forward_pending[UD_MAX_WAITERS];
static pthread_mutex_t ud_forward_lock = PTHREAD_MUTEX_INITIALIZER;
static int ud_forward_users = 0;
static struct sigaction ud_forward_old[UD_NFORWARDED];

static void ud_forward_to(int slot, pid_t p, int sig) {
    if (__atomic_load_n(&ud_forward_group[slot], __ATOMIC_SEQ_CST)) kill(-p, sig);
    else kill(p, sig);
}

static void ud_forward(int sig, siginfo_t *info, void *ctx) {
    (void)ctx;
    int saved = errno;
    // SI_KERNEL: generated by the terminal for the whole foreground group; a child in our group
    // got it too, one in its own group did not.
    int from_terminal = info != NULL && info->si_code == SI_KERNEL;
    for (int i = 0; i < UD_MAX_WAITERS; i++) {
        pid_t p = __atomic_load_n(&ud_forward_pids[i], __ATOMIC_SEQ_CST);
        if (p == -1) {
            // Not forked yet (so not reached by the terminal either): park it.
            __atomic_store_n(&ud_forward_pending[i], sig, __ATOMIC_SEQ_CST);
            p = __atomic_load_n(&ud_forward_pids[i], __ATOMIC_SEQ_CST);
            if (p > 0 && __atomic_exchange_n(&ud_forward_pending[i], 0, __ATOMIC_SEQ_CST)) ud_forward_to(i, p, sig);
        } else if (p > 0) {
            if (from_terminal && !__atomic_load_n(&ud_forward_group[i], __ATOMIC_SEQ_CST)) continue;
            ud_forward_to(i, p, sig);
        }
    }
    errno = saved;
}

// Takes a slot (reserved, or holding `pid`), installing the handlers for the first one.
static int ud_forward_acquire(pid_t pid) {
    int slot = -1;
    pthread_mutex_lock(&ud_forward_lock);
    for (int i = 0; i < UD_MAX_WAITERS; i++) if (__atomic_load_n(&ud_forward_pids[i], __ATOMIC_SEQ_CST) == 0) { slot = i; break; }
    if (slot >= 0) {
        __atomic_store_n(&ud_forward_group[slot], 0, __ATOMIC_SEQ_CST);
        __atomic_store_n(&ud_forward_pending[slot], 0, __ATOMIC_SEQ_CST);
        __atomic_store_n(&ud_forward_pids[slot], pid, __ATOMIC_SEQ_CST);
    }
    if (ud_forward_users++ == 0) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = ud_forward;
        sa.sa_flags = SA_SIGINFO | SA_RESTART;
        sigemptyset(&sa.sa_mask);
        for (size_t i = 0; i < UD_NFORWARDED; i++) sigaction(ud_forwarded[i], &sa, &ud_forward_old[i]);
    }
    pthread_mutex_unlock(&ud_forward_lock);
    return slot;
}

// Publishes the child's pid in a reserved slot and delivers a signal parked meanwhile.
static void ud_forward_publish(int slot, pid_t pid, int own_group) {
    if (slot < 0) return;
    __atomic_store_n(&ud_forward_group[slot], own_group, __ATOMIC_SEQ_CST);
    __atomic_store_n(&ud_forward_pids[slot], pid, __ATOMIC_SEQ_CST);
    int sig = __atomic_exchange_n(&ud_forward_pending[slot], 0, __ATOMIC_SEQ_CST);
    if (sig) ud_forward_to(slot, pid, sig);
}

static void ud_forward_release(int slot) {
    pthread_mutex_lock(&ud_forward_lock);
    if (slot >= 0) __atomic_store_n(&ud_forward_pids[slot], 0, __ATOMIC_SEQ_CST);
    if (--ud_forward_users == 0)
        for (size_t i = 0; i < UD_NFORWARDED; i++) sigaction(ud_forwarded[i], &ud_forward_old[i], NULL);
    pthread_mutex_unlock(&ud_forward_lock);
}

static int ud_forward_slot_of(pid_t pid) {
    for (int i = 0; i < UD_MAX_WAITERS; i++) if (__atomic_load_n(&ud_forward_pids[i], __ATOMIC_SEQ_CST) == pid) return i;
    return -1;
}

// The child gets its own process group (so a forwarded signal reaches everything it starts)
// unless we are the foreground job of a terminal: then it stays in ours, for job control and so
// that the terminal's ^C reaches it directly.
static int ud_wants_own_group(void) {
    pid_t mine = getpgrp();
    for (int fd = 0; fd < 3; fd++) {
        if (isatty(fd) && tcgetpgrp(fd) == mine) return 0;
    }
    return 1;
}

// ---------------------------------------------------------------- one child with a status pipe

// What a caller of ud_fork_reporting does on each side. `child` runs in the child and returns only
// on failure, with `e` filled; success is the status pipe closing with no data (execve, an explicit
// close of `status_fd`, or _exit). `after_fork` (may be NULL) runs in the parent right after
// fork(), with the pid or -1.
typedef struct {
    void (*child)(void *ctx, int status_fd, cl_exec_error_t *e);
    void (*after_fork)(void *ctx, pid_t pid);
    void *ctx;
    const char *who;   // "child", "helper": named when its report cannot be read
} ud_child_spec;

// fork + status pipe + report + reap, for every child this file starts. Returns the pid once the
// child reported success; else -1 with `error` filled (pipe, fork, or the child's own step) and
// the child, if any, reaped.
static pid_t ud_fork_reporting(const ud_child_spec *spec, cl_exec_error_t *error) {
    memset(error, 0, sizeof *error);
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        error->error_number = errno; ud_step(error, "pipe", 0, 0, 0);
        if (spec->after_fork) spec->after_fork(spec->ctx, -1);
        return -1;
    }
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        cl_exec_error_t e;
        memset(&e, 0, sizeof e);
        spec->child(spec->ctx, fds[1], &e);
        e.error_number = errno ? errno : EINVAL;
        (void)ud_write_all(fds[1], &e, sizeof e);
        _exit(127);
    }
    int fork_errno = errno;
    if (spec->after_fork) spec->after_fork(spec->ctx, pid);
    close(fds[1]);
    if (pid < 0) {
        close(fds[0]);
        error->error_number = fork_errno; ud_step(error, "fork", 0, 0, 0);
        return -1;
    }
    size_t got = ud_read_status(fds[0], error);
    close(fds[0]);
    if (got == 0) { memset(error, 0, sizeof *error); return pid; }
    if (got < sizeof *error) {
        memset(error, 0, sizeof *error); error->error_number = EIO;
        ud_step(error, "read the ", spec->who, "'s status", 0);
    }
    error->step[sizeof error->step - 1] = 0;
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
    return -1;
}

// ---------------------------------------------------------------- spawn

typedef struct {
    const cl_exec_config_t *config;
    sigset_t old_mask;
    int slot, own_group;
    pid_t parent;
} ud_spawn_ctx;

static void ud_spawn_child(void *ctx, int status_fd, cl_exec_error_t *e) {
    (void)status_fd;   // close-on-exec: execve closes it
    ud_spawn_ctx *s = ctx;
    ud_child(s->config, s->own_group, s->parent, e);
}

static void ud_spawn_after_fork(void *ctx, pid_t pid) {
    ud_spawn_ctx *s = ctx;
    if (pid > 0) {
        if (s->own_group) (void)setpgid(pid, pid);
        ud_forward_publish(s->slot, pid, s->own_group);
    }
    pthread_sigmask(SIG_SETMASK, &s->old_mask, NULL);
}

pid_t cl_spawn(const cl_exec_config_t *config, cl_exec_error_t *error) {
    // The forwarded signals stay blocked in this thread from before the handlers exist until the
    // pid is published; another thread taking one meanwhile parks it (see the table above). So a
    // SIGTERM during the child's namespace and mount setup ends the child instead of orphaning it.
    ud_spawn_ctx s = { .config = config };
    sigset_t block;
    sigemptyset(&block);
    for (size_t i = 0; i < UD_NFORWARDED; i++) sigaddset(&block, ud_forwarded[i]);
    pthread_sigmask(SIG_BLOCK, &block, &s.old_mask);
    s.slot = ud_forward_acquire(-1);
    s.own_group = ud_wants_own_group();
    s.parent = getpid();
    ud_child_spec spec = { ud_spawn_child, ud_spawn_after_fork, &s, "child" };
    pid_t pid = ud_fork_reporting(&spec, error);
    if (pid < 0) ud_forward_release(s.slot);   // on success the slot is released by the wait
    return pid;
}

// ---------------------------------------------------------------- holder of a joined job step

typedef struct {
    const cl_exec_config_t *config;
    int dirfd, members, devnull;
    long timeout_ms;
} ud_hold_ctx;

static void ud_close_range(unsigned int lo, unsigned int hi) {
    if (lo > hi) return;
    if (syscall(SYS_close_range, lo, hi, 0U) == 0) return;
    for (unsigned int fd = lo; fd <= hi && fd < 65536; fd++) (void)close((int)fd);
}

static long ud_elapsed_ms(const struct timespec *since) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long)(now.tv_sec - since->tv_sec) * 1000 + (now.tv_nsec - since->tv_nsec) / 1000000;
}

static void ud_hold_child(void *ctx, int status_fd, cl_exec_error_t *e) {
    ud_hold_ctx *h = ctx;
    // Its own session, away from the rank's terminal and process group; nothing of the rank's
    // I/O (a launcher waits for the end of a rank's output).
    (void)setsid();
    ud_reset_signals();
    for (int i = 0; i < 3; i++)
        if (dup2(h->devnull, i) < 0) { ud_step(e, "redirect standard I/O", 0, 0, 0); return; }
    // Keep only the status pipe (closed once ready) and the rendezvous directory.
    int lo = status_fd < h->dirfd ? status_fd : h->dirfd, hi = status_fd < h->dirfd ? h->dirfd : status_fd;
    ud_close_range(3, (unsigned int)lo - 1);
    ud_close_range((unsigned int)lo + 1, (unsigned int)hi - 1);
    ud_close_range((unsigned int)hi + 1, ~0U);
    if (ud_setup_root(h->config, e) != 0) return;
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    close(status_fd);   // ready: EOF with no data
    for (;;) {
        struct stat st;
        // Every rank checked in (one byte each), or the directory removed by the last one.
        if (fstatat(h->dirfd, "joined", &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_size >= h->members) break;
        if (fstat(h->dirfd, &st) != 0 || st.st_nlink == 0) break;
        if (ud_elapsed_ms(&start) >= h->timeout_ms) break;
        struct timespec nap = { 0, 20 * 1000 * 1000 };
        (void)nanosleep(&nap, NULL);
    }
    _exit(0);
}

pid_t cl_hold_namespaces(const cl_exec_config_t *config, int dirfd, int members, long timeout_ms,
                         cl_exec_error_t *error) {
    memset(error, 0, sizeof *error);
    int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (devnull < 0) { error->error_number = errno; ud_step(error, "open /dev/null", 0, 0, 0); return -1; }
    ud_hold_ctx h = { config, dirfd, members, devnull, timeout_ms };
    ud_child_spec spec = { ud_hold_child, NULL, &h, "holder" };
    pid_t pid = ud_fork_reporting(&spec, error);
    close(devnull);
    return pid;
}

// ---------------------------------------------------------------- parent: wait and forward

int cl_wait_forwarding(pid_t pid, int *status) {
    pthread_mutex_lock(&ud_forward_lock);
    int slot = ud_forward_slot_of(pid);
    pthread_mutex_unlock(&ud_forward_lock);
    // A pid not started by cl_spawn (the runc command, re-parented to us): forward to it alone.
    if (slot < 0) slot = ud_forward_acquire(pid);
    int r;
    for (;;) {
        r = (int)waitpid(pid, status, 0);
        if (r < 0 && errno == EINTR) continue;
        break;
    }
    int saved = errno;
    ud_forward_release(slot);
    errno = saved;
    return r < 0 ? -1 : 0;
}

// The hold keeps the handlers installed (ud_forward_users) from before the detached runtime
// starts until the command it started has been waited for (security review 2026-12, L2).
int cl_forward_hold(void) { return ud_forward_acquire(-1); }

void cl_forward_drop(int slot) { ud_forward_release(slot); }

int cl_wait_held(int slot, pid_t pid, int *status) {
    if (slot < 0) {
        // The table was full when the hold was taken: forward to the command in a slot of its own.
        int r = cl_wait_forwarding(pid, status), saved = errno;
        ud_forward_release(slot);
        errno = saved;
        return r;
    }
    ud_forward_publish(slot, pid, 0);
    int r;
    for (;;) {
        r = (int)waitpid(pid, status, 0);
        if (r < 0 && errno == EINTR) continue;
        break;
    }
    int saved = errno;
    ud_forward_release(slot);
    errno = saved;
    return r < 0 ? -1 : 0;
}

// ---------------------------------------------------------------- overlay view (planning)

typedef struct {
    const char *dir, *options, *root;
    unsigned int uid, gid;
    int hold[2];
} ud_overlay_ctx;

static void ud_overlay_child(void *ctx, int status_fd, cl_exec_error_t *e) {
    ud_overlay_ctx *o = ctx;
    close(o->hold[1]);
    if (ud_enter_userns(0, 0, o->uid, o->gid, e) != 0) return;
    if (chdir(o->dir) != 0) { ud_step(e, "chdir ", o->dir, 0, 0); return; }
    if (mount("overlay", o->root, "overlay", 0, o->options) != 0) { ud_step(e, "mount overlayfs on ", o->root, 0, 0); return; }
    if (chdir("/") != 0) { ud_step(e, "chdir /", 0, 0, 0); return; }
    close(status_fd);   // ready: EOF with no data
    char b;
    while (read(o->hold[0], &b, 1) < 0 && errno == EINTR) {}
    _exit(0);
}

static void ud_overlay_after_fork(void *ctx, pid_t pid) {
    ud_overlay_ctx *o = ctx;
    (void)pid;
    close(o->hold[0]);
}

pid_t cl_overlay_view(const char *dir, const char *options, const char *root, int *release_fd,
                      cl_exec_error_t *error) {
    memset(error, 0, sizeof *error);
    *release_fd = -1;
    ud_overlay_ctx o = { dir, options, root, (unsigned int)getuid(), (unsigned int)getgid(), { -1, -1 } };
    if (pipe2(o.hold, O_CLOEXEC) != 0) { error->error_number = errno; ud_step(error, "pipe", 0, 0, 0); return -1; }
    ud_child_spec spec = { ud_overlay_child, ud_overlay_after_fork, &o, "helper" };
    pid_t pid = ud_fork_reporting(&spec, error);
    if (pid < 0) { close(o.hold[1]); return -1; }
    *release_fd = o.hold[1];
    return pid;
}

// ---------------------------------------------------------------- probes

static void ud_userns_child(void *ctx, int status_fd, cl_exec_error_t *e) {
    (void)status_fd;
    unsigned int *ids = ctx;
    if (ud_enter_userns(0, 0, ids[0], ids[1], e) != 0) return;
    _exit(0);
}

int cl_userns_probe(cl_exec_error_t *error) {
    unsigned int ids[2] = { (unsigned int)getuid(), (unsigned int)getgid() };
    ud_child_spec spec = { ud_userns_child, NULL, ids, "child" };
    pid_t pid = ud_fork_reporting(&spec, error);
    if (pid < 0) return error->error_number ? error->error_number : EINVAL;
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        memset(error, 0, sizeof *error);
        error->error_number = ECHILD;
        ud_step(error, "user namespace probe died", 0, 0, 0);
        return ECHILD;
    }
    return 0;
}

int cl_ptrace_probe(void) {
    pid_t pid = fork();
    if (pid == 0) {
        long r = ptrace(PTRACE_TRACEME, 0, NULL, NULL);
        _exit(r == 0 ? 0 : (errno > 0 && errno < 255 ? errno : 255));
    }
    if (pid < 0) return errno;
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
    if (WIFEXITED(st)) return WEXITSTATUS(st);
    return ECHILD;
}

// ---------------------------------------------------------------- xattrs

int cl_fsetxattr(int fd, const char *name, const char *value, size_t size) {
    return fsetxattr(fd, name, value, size, 0);
}

long cl_fgetxattr(int fd, const char *name, void *value, size_t size) {
    return (long)fgetxattr(fd, name, value, size);
}

long cl_lgetxattr(const char *path, const char *name, void *value, size_t size) {
    return (long)lgetxattr(path, name, value, size);
}

long cl_copy_file_range(int fd_in, int fd_out, size_t len) {
    return (long)copy_file_range(fd_in, NULL, fd_out, NULL, len, 0);
}
