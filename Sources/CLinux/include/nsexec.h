#ifndef CSYSTEM_NSEXEC_H
#define CSYSTEM_NSEXEC_H
// placeholder: owned by the module that needs it
#endif
