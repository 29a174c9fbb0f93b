#include "zstd_dl.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// The few declarations we need from zstd.h (stable ABI since zstd 1.0).
typedef struct { const void *src; size_t size; size_t pos; } ZSTD_inBuffer;
typedef struct { void *dst; size_t size; size_t pos; } ZSTD_outBuffer;
typedef void ZSTD_DStream;

static struct {
    ZSTD_DStream *(*createDStream)(void);
    size_t (*freeDStream)(ZSTD_DStream *);
    size_t (*initDStream)(ZSTD_DStream *);
    size_t (*decompressStream)(ZSTD_DStream *, ZSTD_outBuffer *, ZSTD_inBuffer *);
    unsigned (*isError)(size_t);
    const char *(*getErrorName)(size_t);
} api;

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static const char *load_error = NULL;
static char load_error_buf[256];

static void load(void) {
    void *h = dlopen("libzstd.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        load_error = "zstd layer but libzstd.so.1 not found";
        return;
    }
#define SYM(field, name) \
    do { *(void **)(&api.field) = dlsym(h, name); \
         if (!api.field) { snprintf(load_error_buf, sizeof load_error_buf, "libzstd.so.1 lacks %s", name); \
                           load_error = load_error_buf; return; } } while (0)
    SYM(createDStream, "ZSTD_createDStream");
    SYM(freeDStream, "ZSTD_freeDStream");
    SYM(initDStream, "ZSTD_initDStream");
    SYM(decompressStream, "ZSTD_decompressStream");
    SYM(isError, "ZSTD_isError");
    SYM(getErrorName, "ZSTD_getErrorName");
#undef SYM
}

const char *cl_zstd_load_error(void) {
    pthread_once(&load_once, load);
    return load_error;
}

struct cl_zstd {
    ZSTD_DStream *ds;
    char err[160];
};

cl_zstd *cl_zstd_new(void) {
    if (cl_zstd_load_error()) return NULL;
    cl_zstd *z = calloc(1, sizeof *z);
    if (!z) return NULL;
    z->ds = api.createDStream();
    if (!z->ds) { free(z); return NULL; }
    size_t r = api.initDStream(z->ds);
    if (api.isError(r)) { api.freeDStream(z->ds); free(z); return NULL; }
    return z;
}

void cl_zstd_free(cl_zstd *z) {
    if (!z) return;
    if (z->ds) api.freeDStream(z->ds);
    free(z);
}

int cl_zstd_step(cl_zstd *z, const uint8_t *in, size_t in_len, size_t *in_used,
                 uint8_t *out, size_t out_len, size_t *out_made) {
    ZSTD_inBuffer ib = { in, in_len, 0 };
    ZSTD_outBuffer ob = { out, out_len, 0 };
    size_t r = api.decompressStream(z->ds, &ob, &ib);
    *in_used = ib.pos;
    *out_made = ob.pos;
    if (api.isError(r)) {
        snprintf(z->err, sizeof z->err, "zstd: %s", api.getErrorName(r));
        return CL_ZSTD_ERROR;
    }
    return r == 0 ? CL_ZSTD_FRAME_END : CL_ZSTD_OK;
}

const char *cl_zstd_error(const cl_zstd *z) { return z->err[0] ? z->err : "corrupt zstd data"; }
