#ifndef CLINUX_CLINUX_H
#define CLINUX_CLINUX_H
// Umbrella header for the C helpers. Each concern has its own header and .c file.
#include "fsutil.h"     // openat2 / rooted lookups / small syscall wrappers (Archive, System)
#include "zstd_dl.h"    // zstd decompression through a dlopen'ed libzstd (Archive)
#include "gzip.h"       // zlib inflate wrapper (Archive)
#include "nsexec.h"     // N1: fork + user/mount namespace + pivot_root + exec (Engines)
#include "buildinfo.h"  // commit, date and toolchain of this build (version)
#endif
