#include "buildinfo.h"

#include <gnu/libc-version.h>

#ifndef UDOCKER_BUILD_COMMIT
#define UDOCKER_BUILD_COMMIT "unknown"
#endif
#ifndef UDOCKER_BUILD_DATE
#define UDOCKER_BUILD_DATE "unknown"
#endif
#ifndef UDOCKER_BUILD_TOOLCHAIN
#define UDOCKER_BUILD_TOOLCHAIN "clang " __clang_version__
#endif

const char *cl_build_commit(void) { return UDOCKER_BUILD_COMMIT; }
const char *cl_build_date(void) { return UDOCKER_BUILD_DATE; }
const char *cl_build_toolchain(void) { return UDOCKER_BUILD_TOOLCHAIN; }
const char *cl_libc_version(void) { return gnu_get_libc_version(); }
