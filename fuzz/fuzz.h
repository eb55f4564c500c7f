/* Shared by the libFuzzer targets: an invariant that must hold for every
 * input, checked beyond what the sanitizers see. A failure aborts, so
 * libFuzzer saves the input that broke it. */
#ifndef SW_FUZZ_H
#define SW_FUZZ_H

#include <stdio.h>
#include <stdlib.h>

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x)) {                                                                                \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #x);              \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#endif
