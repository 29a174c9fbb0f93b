#ifndef CLINUX_ZSTD_DL_H
#define CLINUX_ZSTD_DL_H
// Streaming zstd decompression through libzstd.so.1 loaded with dlopen at run time, so the
// binary has no link-time dependency on libzstd.
#include <stddef.h>
#include <stdint.h>

typedef struct cl_zstd cl_zstd;

#define CL_ZSTD_OK          0   // progress made (frame still open)
#define CL_ZSTD_FRAME_END   1   // a frame was completely decoded and flushed
#define CL_ZSTD_ERROR      -1

/// NULL when libzstd could be loaded, otherwise a one-line reason
/// ("zstd layer but libzstd.so.1 not found").
const char *cl_zstd_load_error(void);

/// NULL if the library is missing or allocation failed (check cl_zstd_load_error()).
cl_zstd *cl_zstd_new(void);
void cl_zstd_free(cl_zstd *z);
int cl_zstd_step(cl_zstd *z, const uint8_t *in, size_t in_len, size_t *in_used,
                 uint8_t *out, size_t out_len, size_t *out_made);
const char *cl_zstd_error(const cl_zstd *z);

#endif
