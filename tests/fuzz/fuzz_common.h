/* Shared by the libFuzzer targets in tests/fuzz/ (clang -fsanitize=fuzzer,address,undefined):
 * a cursor over the fuzzer's bytes and a check that aborts (a finding) when it fails. */
#ifndef CROSSL_FUZZ_COMMON_H
#define CROSSL_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crossl_frame.h"

#define FUZZ_CHECK(cond)                                                            \
    do {                                                                            \
        if (!(cond)) {                                                              \
            fprintf(stderr, "FUZZ_CHECK failed: %s (%s:%d)\n", #cond, __FILE__,     \
                    __LINE__);                                                      \
            abort();                                                                \
        }                                                                           \
    } while (0)

typedef struct fuzz_in {
    const uint8_t *p;
    size_t n;
} fuzz_in_t;

/* The next k bytes as a little-endian integer (zeros once the input is used up). */
static inline uint64_t fuzz_take(fuzz_in_t *in, unsigned k)
{
    uint64_t v = 0;
    unsigned i;
    for (i = 0; i < k; i++) {
        uint64_t b = 0;
        if (in->n > 0) {
            b = in->p[0];
            in->p++;
            in->n--;
        }
        v |= b << (8u * i);
    }
    return v;
}

#endif
