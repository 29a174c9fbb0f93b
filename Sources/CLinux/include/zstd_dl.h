#ifndef CSYSTEM_ZSTD_DL_H
#define CSYSTEM_ZSTD_DL_H
// placeholder: owned by the module that needs it
#endif
