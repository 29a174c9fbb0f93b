#ifndef CSYSTEM_FSUTIL_H
#define CSYSTEM_FSUTIL_H
// placeholder: owned by the module that needs it
#endif
