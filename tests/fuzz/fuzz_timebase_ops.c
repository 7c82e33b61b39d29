/* libFuzzer: the time base driven by arbitrary operations (beacons anywhere in u64, beacons
 * close to the node's own map so that blocks and rates form, grid pushes, queries at any
 * point). Every result equals the exact __int128 definition; the rate stays clamped; a window
 * the grid reports is complete. */
#include "fuzz_reference.h"

static const uint32_t RATES[8] = {1u, 1000u, 10000u, 50000u, 700000u, 32768000u,
                                  1000000000u, 4294967295u};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_in_t in = {data, size};
    crossl_sync_t s;
    crossl_grid_t g;
    crossl_beacon_t b;
    uint64_t local = fuzz_take(&in, 8);
    crossl_sync_init(&s);
    memset(&g, 0, sizeof g);
    memset(&b, 0, sizeof b);
    while (in.n > 0) {
        unsigned op = (unsigned)fuzz_take(&in, 1);
        switch (op % 6u) {
        case 0: /* any beacon at any time */
            b.epoch = (uint16_t)fuzz_take(&in, 1);
            b.phone_time_us = fuzz_take(&in, 8);
            b.origin_us = fuzz_take(&in, 8);
            local = fuzz_take(&in, 8);
            (void)crossl_sync_on_beacon(&s, &b, local);
            break;
        case 1: case 2: { /* a beacon near the map, some time later */
            int64_t jitter = (int64_t)(int16_t)fuzz_take(&in, 2) * 16;
            local += fuzz_take(&in, (op >> 3) & 1u ? 5 : 3);
            b.phone_time_us = crossl_sync_to_phone(&s, local) + (uint64_t)jitter;
            (void)crossl_sync_on_beacon(&s, &b, local);
            break;
        }
        case 3: { /* the slope helper on its whole domain */
            int64_t dp = (int64_t)fuzz_take(&in, 8);
            int64_t dl = (int64_t)(fuzz_take(&in, 4) % 1000000000u) + 1;
            FUZZ_CHECK(crossl_sync_slope(dp, dl) == ref_slope(dp, dl));
            break;
        }
        case 4: { /* a grid push */
            int64_t n = (op >> 3) & 1u ? (int64_t)fuzz_take(&in, 8)
                                       : crossl_sync_i64((uint64_t)g.last + (op >> 4) - 2u);
            uint32_t w = (uint32_t)fuzz_take(&in, 1) % 12u, hop = (uint32_t)fuzz_take(&in, 1) % 12u;
            int64_t k = crossl_grid_push(&g, n, w, hop);
            FUZZ_CHECK(k >= -1);
            FUZZ_CHECK(k < 0 || (g.run >= w && k * (int64_t)hop + (int64_t)w - 1 == n));
            break;
        }
        default: { /* queries at arbitrary points */
            uint64_t t = (op >> 3) & 1u ? fuzz_take(&in, 8) : local + fuzz_take(&in, 4);
            uint64_t p = fuzz_take(&in, 8);
            int64_t n = (int64_t)fuzz_take(&in, 8);
            uint32_t rate = (op >> 4) & 1u ? (uint32_t)fuzz_take(&in, 4) : RATES[(op >> 5) & 7u];
            ref_check(&s, t, p, n, rate);
            break;
        }
        }
        ref_check(&s, local, s.anchor_phone, 0, RATES[op & 7u]);
    }
    return 0;
}
