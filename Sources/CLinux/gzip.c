#include "gzip.h"

#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <zlib.h>

struct cl_gz {
    z_stream s;
    char err[160];
};

cl_gz *cl_gz_new(void) {
    cl_gz *z = calloc(1, sizeof *z);
    if (!z) return NULL;
    // 16 + MAX_WBITS: gzip wrapper only (no zlib/raw auto-detection surprises).
    if (inflateInit2(&z->s, 16 + MAX_WBITS) != Z_OK) { free(z); return NULL; }
    return z;
}

void cl_gz_free(cl_gz *z) {
    if (!z) return;
    inflateEnd(&z->s);
    free(z);
}

int cl_gz_reset(cl_gz *z) {
    return inflateReset(&z->s) == Z_OK ? CL_GZ_OK : CL_GZ_ERROR;
}

static void set_err(cl_gz *z, const char *what) {
    snprintf(z->err, sizeof z->err, "%s", what);
}

int cl_gz_step(cl_gz *z, const uint8_t *in, size_t in_len, size_t *in_used,
               uint8_t *out, size_t out_len, size_t *out_made) {
    // zlib counts in uInt; clamp huge buffers.
    if (in_len > 0x40000000u) in_len = 0x40000000u;
    if (out_len > 0x40000000u) out_len = 0x40000000u;
    z->s.next_in = (Bytef *)in;
    z->s.avail_in = (uInt)in_len;
    z->s.next_out = out;
    z->s.avail_out = (uInt)out_len;
    int r = inflate(&z->s, Z_NO_FLUSH);
    *in_used = in_len - z->s.avail_in;
    *out_made = out_len - z->s.avail_out;
    switch (r) {
    case Z_OK:
        return CL_GZ_OK;
    case Z_BUF_ERROR:   // no progress possible with what we were given; caller supplies more
        return CL_GZ_OK;
    case Z_STREAM_END:
        return CL_GZ_MEMBER_END;
    case Z_NEED_DICT:
        set_err(z, "gzip stream needs a preset dictionary");
        return CL_GZ_ERROR;
    case Z_MEM_ERROR:
        set_err(z, "out of memory while inflating");
        return CL_GZ_ERROR;
    default:
        set_err(z, z->s.msg ? z->s.msg : "corrupt gzip data");
        return CL_GZ_ERROR;
    }
}

const char *cl_gz_error(const cl_gz *z) { return z->err[0] ? z->err : "corrupt gzip data"; }
