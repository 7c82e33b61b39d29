/* libFuzzer: the control messages. Arbitrary bytes through crossl_beacon_decode and
 * crossl_hello_decode: an accepted message re-encodes to the same bytes; a message built from
 * the bytes round-trips. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *buf = (uint8_t *)malloc(size ? size : 1u);
    uint8_t again[CROSSL_BEACON_SIZE + CROSSL_HELLO_SIZE];
    crossl_beacon_t b, b2;
    crossl_hello_t h, h2;
    fuzz_in_t in = {data, size};
    if (buf == NULL) return 0;
    if (size) memcpy(buf, data, size);
    if (crossl_beacon_decode(buf, size, &b) == CROSSL_FRAME_OK) {
        FUZZ_CHECK(size == CROSSL_BEACON_SIZE);
        FUZZ_CHECK(crossl_beacon_encode(&b, again, sizeof again) == (int32_t)size);
        FUZZ_CHECK(memcmp(again, buf, size) == 0);
    }
    if (crossl_hello_decode(buf, size, &h) == CROSSL_FRAME_OK) {
        FUZZ_CHECK(size == CROSSL_HELLO_SIZE);
        FUZZ_CHECK(crossl_hello_encode(&h, again, sizeof again) == (int32_t)size);
        FUZZ_CHECK(memcmp(again, buf, size) == 0);
    }
    free(buf);
    b.flags = (uint8_t)(fuzz_take(&in, 1) & 0x0Fu);
    b.epoch = (uint16_t)fuzz_take(&in, 2);
    b.beacon_seq = (uint16_t)fuzz_take(&in, 2);
    b.phone_time_us = fuzz_take(&in, 8);
    b.origin_us = fuzz_take(&in, 8);
    b.fingerprint = (uint32_t)fuzz_take(&in, 4);
    FUZZ_CHECK(crossl_beacon_encode(&b, again, CROSSL_BEACON_SIZE) == (int32_t)CROSSL_BEACON_SIZE);
    FUZZ_CHECK(crossl_beacon_decode(again, CROSSL_BEACON_SIZE, &b2) == CROSSL_FRAME_OK);
    FUZZ_CHECK(b.phone_time_us == b2.phone_time_us && b.origin_us == b2.origin_us &&
               b.epoch == b2.epoch && b.flags == b2.flags && b.fingerprint == b2.fingerprint &&
               b.beacon_seq == b2.beacon_seq);
    FUZZ_CHECK(crossl_hello_decode(again, CROSSL_BEACON_SIZE, &h) == CROSSL_FRAME_ERR_BAD_MAGIC);
    h.flags = (uint8_t)(fuzz_take(&in, 1) & 0x0Fu);
    h.boot = (uint16_t)fuzz_take(&in, 2);
    h.hello_seq = (uint16_t)fuzz_take(&in, 2);
    h.fingerprint = (uint32_t)fuzz_take(&in, 4);
    h.local_us = fuzz_take(&in, 8);
    FUZZ_CHECK(crossl_hello_encode(&h, again, CROSSL_HELLO_SIZE) == (int32_t)CROSSL_HELLO_SIZE);
    FUZZ_CHECK(crossl_hello_decode(again, CROSSL_HELLO_SIZE, &h2) == CROSSL_FRAME_OK);
    FUZZ_CHECK(h.boot == h2.boot && h.hello_seq == h2.hello_seq && h.local_us == h2.local_us &&
               h.fingerprint == h2.fingerprint && h.flags == h2.flags);
    FUZZ_CHECK(crossl_beacon_decode(again, CROSSL_HELLO_SIZE, &b) == CROSSL_FRAME_ERR_TRUNCATED);
    return 0;
}
