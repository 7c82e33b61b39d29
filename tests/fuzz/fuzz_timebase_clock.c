/* libFuzzer: a node clock (any u64 start, wrap included; drift up to the +-5 % clamp) hears
 * beacons with delays, then long gaps (up to ~35 years) chosen by the fuzzer. After every
 * beacon the grid holds together: sample_index(sample_due(n)) == n, due times increase with
 * n, and every value equals the exact __int128 definition. */
#include "fuzz_reference.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_in_t in = {data, size};
    crossl_sync_t s;
    crossl_beacon_t b;
    uint64_t local0 = fuzz_take(&in, 8), phone = fuzz_take(&in, 6);
    int64_t drift_ppb = (int64_t)(fuzz_take(&in, 4) % 100000001u) - 50000000; /* +-5 % */
    uint32_t rate = (uint32_t)(fuzz_take(&in, 4) % 100000000u) + 1u;          /* <= 100 kHz */
    uint64_t phone0 = phone;
    int beacons = 0;
    crossl_sync_init(&s);
    memset(&b, 0, sizeof b);
    b.origin_us = phone + fuzz_take(&in, 3);
    while (in.n > 0 && beacons < 4000) {
        unsigned op = (unsigned)fuzz_take(&in, 1);
        uint64_t step = op < 224u ? 250000u + fuzz_take(&in, 2) * 8u /* ~0.25-0.77 s */
                                  : fuzz_take(&in, 6);            /* a gap of up to 2^48 us */
        i128 el;
        uint64_t local, due0, due1;
        int64_t n;
        phone += step;
        el = (i128)(phone - phone0) + (i128)(phone - phone0) * drift_ppb / 1000000000;
        local = local0 + (uint64_t)el + (uint64_t)(fuzz_take(&in, 1) * 97u); /* + delay */
        b.phone_time_us = phone;
        if (op == 255u) b.epoch++;
        (void)crossl_sync_on_beacon(&s, &b, local);
        beacons++;
        n = ref_sample_index(&s, local, rate);
        ref_check(&s, local, phone, n, rate);
        if (n < 0 || n > ((int64_t)1 << 62) / 1000000000 * (int64_t)rate / 1000) continue;
        due0 = crossl_sync_sample_due(&s, n, rate);
        due1 = crossl_sync_sample_due(&s, n + 1, rate);
        FUZZ_CHECK(crossl_sync_sample_index(&s, due0, rate) == n);
        FUZZ_CHECK(crossl_sync_i64(due1 - due0) > 0);
    }
    return 0;
}
