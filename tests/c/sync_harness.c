/* Host harness for the time base in crossl_frame.h (tests/test_sync_c.py; ASan/UBSan build).
 * Reads a script on stdin, one command a line, prints one result line per command:
 *   B epoch phone origin local   crossl_sync_on_beacon  -> "r rate anchor_local anchor_phone"
 *   M local                      crossl_sync_to_phone
 *   L phone                      crossl_sync_to_local
 *   I local rate_mhz             crossl_sync_sample_index
 *   D n rate_mhz                 crossl_sync_sample_due
 *   G n window hop               crossl_grid_push
 *   X hex                        crossl_beacon_decode -> fields, or ERR code
 *   H hex                        crossl_hello_decode -> fields + re-encoded, or ERR code
 *   E flags boot seq fp local    crossl_hello_encode -> hex
 *   S                            a fresh sync and grid state (a node reboot)          */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crossl_frame.h"

int main(void)
{
    crossl_sync_t s;
    crossl_grid_t g;
    char cmd[2];
    crossl_sync_init(&s);
    memset(&g, 0, sizeof g);
    while (scanf("%1s", cmd) == 1) {
        if (cmd[0] == 'B') {
            crossl_beacon_t b;
            unsigned epoch;
            uint64_t local;
            int r;
            memset(&b, 0, sizeof b);
            if (scanf("%u %" SCNu64 " %" SCNu64 " %" SCNu64, &epoch, &b.phone_time_us,
                      &b.origin_us, &local) != 4) return 2;
            b.epoch = (uint16_t)epoch;
            r = crossl_sync_on_beacon(&s, &b, local); /* before reading s */
            printf("%d %" PRId32 " %" PRIu64 " %" PRIu64 "\n", r, s.rate, s.anchor_local,
                   s.anchor_phone);
        } else if (cmd[0] == 'M' || cmd[0] == 'L') {
            uint64_t t;
            if (scanf("%" SCNu64, &t) != 1) return 2;
            printf("%" PRIu64 "\n", cmd[0] == 'M' ? crossl_sync_to_phone(&s, t)
                                                  : crossl_sync_to_local(&s, t));
        } else if (cmd[0] == 'I') {
            uint64_t t;
            uint32_t r;
            if (scanf("%" SCNu64 " %" SCNu32, &t, &r) != 2) return 2;
            printf("%" PRId64 "\n", crossl_sync_sample_index(&s, t, r));
        } else if (cmd[0] == 'D') {
            int64_t n;
            uint32_t r;
            if (scanf("%" SCNd64 " %" SCNu32, &n, &r) != 2) return 2;
            printf("%" PRIu64 "\n", crossl_sync_sample_due(&s, n, r));
        } else if (cmd[0] == 'G') {
            int64_t n;
            uint32_t w, h;
            if (scanf("%" SCNd64 " %" SCNu32 " %" SCNu32, &n, &w, &h) != 3) return 2;
            printf("%" PRId64 "\n", crossl_grid_push(&g, n, w, h));
        } else if (cmd[0] == 'X') {
            char hex[256];
            uint8_t *buf;
            size_t n, i;
            crossl_beacon_t b;
            crossl_frame_status_t st;
            if (scanf("%255s", hex) != 1) return 2;
            n = strlen(hex) / 2u;
            buf = (uint8_t *)malloc(n ? n : 1u); /* exact size: ASan sees any overrun */
            if (buf == NULL) return 3;
            for (i = 0; i < n; i++) {
                unsigned v;
                if (sscanf(hex + 2u * i, "%2x", &v) != 1) return 2;
                buf[i] = (uint8_t)v;
            }
            st = crossl_beacon_decode(n ? buf : (const uint8_t *)"", n, &b);
            if (st != CROSSL_FRAME_OK) {
                printf("ERR %d\n", (int)st);
            } else {
                uint8_t again[CROSSL_BEACON_SIZE];
                int32_t k = crossl_beacon_encode(&b, again, sizeof again);
                printf("OK %u %u %u %" PRIu64 " %" PRIu64 " %" PRIu32 " %s\n", (unsigned)b.flags,
                       (unsigned)b.epoch, (unsigned)b.beacon_seq, b.phone_time_us, b.origin_us,
                       b.fingerprint,
                       k == (int32_t)n && memcmp(again, buf, n) == 0 ? "same" : "DIFFERENT");
            }
            free(buf);
        } else if (cmd[0] == 'H') {
            char hex[256];
            uint8_t buf[128], again[CROSSL_HELLO_SIZE];
            size_t n, i;
            crossl_hello_t h;
            crossl_frame_status_t st;
            if (scanf("%255s", hex) != 1) return 2;
            n = strlen(hex) / 2u;
            for (i = 0; i < n; i++) {
                unsigned v;
                if (sscanf(hex + 2u * i, "%2x", &v) != 1) return 2;
                buf[i] = (uint8_t)v;
            }
            st = crossl_hello_decode(buf, n, &h);
            if (st != CROSSL_FRAME_OK) {
                printf("ERR %d\n", (int)st);
            } else {
                int32_t k = crossl_hello_encode(&h, again, sizeof again);
                printf("OK %u %u %u %" PRIu32 " %" PRIu64 " %s\n", (unsigned)h.flags,
                       (unsigned)h.boot, (unsigned)h.hello_seq, h.fingerprint, h.local_us,
                       k == (int32_t)n && memcmp(again, buf, n) == 0 ? "same" : "DIFFERENT");
            }
        } else if (cmd[0] == 'E') {
            crossl_hello_t h;
            unsigned flags, boot, seq;
            uint8_t out[CROSSL_HELLO_SIZE];
            int32_t k, i;
            if (scanf("%u %u %u %" SCNu32 " %" SCNu64, &flags, &boot, &seq, &h.fingerprint,
                      &h.local_us) != 5) return 2;
            h.flags = (uint8_t)flags;
            h.boot = (uint16_t)boot;
            h.hello_seq = (uint16_t)seq;
            k = crossl_hello_encode(&h, out, sizeof out);
            if (k < 0) {
                printf("ERR %d\n", (int)k);
            } else {
                for (i = 0; i < k; i++) printf("%02x", out[i]);
                printf("\n");
            }
        } else if (cmd[0] == 'S') {
            crossl_sync_init(&s);
            memset(&g, 0, sizeof g);
            printf("reset\n");
        } else {
            return 2;
        }
    }
    return 0;
}
