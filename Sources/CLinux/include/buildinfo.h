#ifndef CLINUX_BUILDINFO_H
#define CLINUX_BUILDINFO_H
// Build information injected by the Makefile (-Xcc -DUDOCKER_BUILD_COMMIT="…" …); a plain
// `swift build` without git or the Makefile gets "unknown" / the compiler's own version.
const char *cl_build_commit(void);
const char *cl_build_date(void);
const char *cl_build_toolchain(void);
// The running C library's version (gnu_get_libc_version: "2.28", "2.36"), for `doctor`.
const char *cl_libc_version(void);
#endif
