/* libFuzzer: COBS. Arbitrary packets decode within bounds (out of place and in place alike);
 * arbitrary data encodes without 0x00, within CROSSL_FRAME_COBS_MAX_SIZE, and decodes back. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *in = (uint8_t *)malloc(size ? size : 1u);
    uint8_t *out = (uint8_t *)malloc(size ? size : 1u);
    size_t cap = CROSSL_FRAME_COBS_MAX_SIZE(size);
    uint8_t *enc = (uint8_t *)malloc(cap);
    int32_t d, d2, e;
    if (in == NULL || out == NULL || enc == NULL) goto done;
    if (size) memcpy(in, data, size);
    d = crossl_frame_cobs_decode(in, size, out, size);
    FUZZ_CHECK(d < 0 ? d == CROSSL_FRAME_ERR_BAD_COBS || d == CROSSL_FRAME_ERR_BUFFER_TOO_SMALL
                     : (size_t)d < size || size == 0u);
    d2 = crossl_frame_cobs_decode(in, size, in, size); /* in place, as the header allows */
    FUZZ_CHECK(d2 == d && (d < 0 || memcmp(in, out, (size_t)d) == 0));
    if (size) memcpy(in, data, size);
    e = crossl_frame_cobs_encode(in, size, enc, cap);
    FUZZ_CHECK(e > 0 && (size_t)e <= cap && memchr(enc, 0, (size_t)e) == NULL);
    if (size > 0u) {
        d = crossl_frame_cobs_decode(enc, (size_t)e, out, size);
        FUZZ_CHECK(d == (int32_t)size && memcmp(out, in, size) == 0);
        if (crossl_frame_cobs_encode(in, size, enc, (size_t)e - 1u) >= 0) FUZZ_CHECK(0);
    }
done:
    free(in);
    free(out);
    free(enc);
    return 0;
}
