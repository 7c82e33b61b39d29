/* libFuzzer: a frame built from the fuzzer's bytes (header fields, version, latent) encodes,
 * decodes to the same fields and latent, and survives COBS framing; every truncation of it is
 * rejected. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_in_t in = {data, size};
    crossl_frame_header_t h;
    crossl_frame_v2_t v2;
    crossl_frame_t f;
    uint8_t latent[512], out[CROSSL_FRAME_SIZE_V2(128u, 4u)], copy[512];
    uint8_t cobs[CROSSL_FRAME_COBS_MAX_SIZE(sizeof out)], back[sizeof out];
    int v2_on = (int)(fuzz_take(&in, 1) & 1u);
    int32_t n, c, d, k;
    uint32_t itemsize;
    h.modality_id = (uint8_t)fuzz_take(&in, 1);
    h.dtype = (uint8_t)(fuzz_take(&in, 1) % 4u); /* 3: an unknown dtype */
    h.flags = (uint8_t)(fuzz_take(&in, 1) & 0x1Fu);
    h.length = (uint16_t)(fuzz_take(&in, 1) % 129u);
    h.seq = (uint32_t)fuzz_take(&in, 4);
    h.timestamp_us = fuzz_take(&in, 8);
    h.fingerprint = (uint32_t)fuzz_take(&in, 4);
    v2.window = (uint32_t)fuzz_take(&in, 4);
    v2.epoch = (uint16_t)fuzz_take(&in, 2);
    v2.boot = (uint16_t)fuzz_take(&in, 2);
    for (k = 0; k < (int32_t)sizeof latent; k++) latent[k] = (uint8_t)fuzz_take(&in, 1);
    n = crossl_frame_encode_version(&h, v2_on ? &v2 : NULL, latent, out, sizeof out);
    itemsize = crossl_frame_dtype_size(h.dtype);
    if (itemsize == 0u) { FUZZ_CHECK(n == CROSSL_FRAME_ERR_BAD_DTYPE); return 0; }
    if (h.length == 0u) { FUZZ_CHECK(n == CROSSL_FRAME_ERR_INVALID_ARGUMENT); return 0; }
    if (h.flags & 0xF0u) { FUZZ_CHECK(n == CROSSL_FRAME_ERR_BAD_FLAGS); return 0; }
    FUZZ_CHECK(n == (int32_t)(v2_on ? CROSSL_FRAME_SIZE_V2(h.length, itemsize)
                                    : CROSSL_FRAME_SIZE(h.length, itemsize)));
    FUZZ_CHECK(crossl_frame_decode(out, (size_t)n, &f) == CROSSL_FRAME_OK);
    FUZZ_CHECK(f.version == (v2_on ? 2u : 1u) && f.header.seq == h.seq);
    FUZZ_CHECK(f.header.timestamp_us == h.timestamp_us && f.header.fingerprint == h.fingerprint);
    FUZZ_CHECK(f.header.length == h.length && f.header.flags == h.flags);
    FUZZ_CHECK(!v2_on || (f.v2.window == v2.window && f.v2.epoch == v2.epoch &&
                          f.v2.boot == v2.boot));
    FUZZ_CHECK(crossl_frame_copy_latent(&f, copy, sizeof copy) == (int32_t)(h.length * itemsize));
    FUZZ_CHECK(memcmp(copy, latent, h.length * itemsize) == 0);
    for (k = 0; k < n; k++) FUZZ_CHECK(crossl_frame_decode(out, (size_t)k, &f) != CROSSL_FRAME_OK);
    c = crossl_frame_cobs_encode(out, (size_t)n, cobs, sizeof cobs);
    FUZZ_CHECK(c > 0 && (size_t)c <= CROSSL_FRAME_COBS_MAX_SIZE((size_t)n));
    FUZZ_CHECK(memchr(cobs, 0, (size_t)c) == NULL);
    d = crossl_frame_cobs_decode(cobs, (size_t)c, back, sizeof back);
    FUZZ_CHECK(d == n && memcmp(back, out, (size_t)n) == 0);
    return 0;
}
