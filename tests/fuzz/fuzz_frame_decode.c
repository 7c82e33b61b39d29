/* libFuzzer: crossl_frame_decode on arbitrary bytes; a frame it accepts re-encodes to the same
 * bytes, and its latent copies out within bounds. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    crossl_frame_t f;
    uint8_t *buf = (uint8_t *)malloc(size ? size : 1u); /* exact size: ASan sees overruns */
    static uint8_t again[CROSSL_FRAME_SIZE_V2(65535u, 4u)];
    static uint8_t latent[65535u * 4u];
    int32_t n;
    if (buf == NULL) return 0;
    if (size) memcpy(buf, data, size);
    if (crossl_frame_decode(buf, size, &f) == CROSSL_FRAME_OK) {
        FUZZ_CHECK(f.version == 1u || f.version == 2u);
        n = crossl_frame_copy_latent(&f, latent, sizeof latent);
        FUZZ_CHECK(n == (int32_t)f.latent_size);
        n = crossl_frame_encode_version(&f.header, f.version == 2u ? &f.v2 : NULL, latent, again,
                                        sizeof again);
        FUZZ_CHECK(n == (int32_t)size && memcmp(again, buf, size) == 0);
    }
    free(buf);
    return 0;
}
