#ifndef CSYSTEM_GZIP_H
#define CSYSTEM_GZIP_H
// placeholder: owned by the module that needs it
#endif
