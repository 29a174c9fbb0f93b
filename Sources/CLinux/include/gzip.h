#ifndef CLINUX_GZIP_H
#define CLINUX_GZIP_H
// Push-style gzip inflate over zlib. The caller owns the input and output buffers and handles
// multi-member streams by calling cl_gz_reset after CL_GZ_MEMBER_END when more input follows.
#include <stddef.h>
#include <stdint.h>

typedef struct cl_gz cl_gz;

#define CL_GZ_OK          0   // progress made (or more input needed)
#define CL_GZ_MEMBER_END  1   // one gzip member finished (trailer and CRC verified)
#define CL_GZ_ERROR      -1   // corrupt data; see cl_gz_error

cl_gz *cl_gz_new(void);
void cl_gz_free(cl_gz *z);
/// Starts a new member (after CL_GZ_MEMBER_END).
int cl_gz_reset(cl_gz *z);
/// Inflates from in[0..in_len) into out[0..out_len). Sets *in_used and *out_made.
int cl_gz_step(cl_gz *z, const uint8_t *in, size_t in_len, size_t *in_used,
               uint8_t *out, size_t out_len, size_t *out_made);
/// Last error text (never NULL).
const char *cl_gz_error(const cl_gz *z);

#endif
