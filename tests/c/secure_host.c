/* Host driver of crossl_secure.h for tests/test_secure_c.py: one command per stdin line,
 *   N KEY                          -> "N <network id>" (keyed BLAKE2b, as secure.network_id)
 *   S KEY NET SENDER BOOT CTR HEX  -> "S <sealed hex>" or "S <status>"
 *   O KEY NET HEX                  -> "O <plain hex>" or "O <status>"
 *   B KEY NET HEX                  -> "B <plain hex>" or "B <status>" (one phone memory per run)
 * KEY and HEX are hex strings, numbers decimal. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crossl_secure.h"

static uint8_t key[32], in[2048], out[2048];
static char line[8192], hexbuf[4200];
static crossl_seal_peer_t phone;

static size_t unhex(const char *s, uint8_t *dst, size_t cap)
{
    size_t n = 0;
    unsigned v;
    while (s[0] && s[1] && n < cap && sscanf(s, "%2x", &v) == 1) {
        dst[n++] = (uint8_t)v;
        s += 2;
    }
    return n;
}

static void put_hex(char tag, const uint8_t *p, int32_t n)
{
    int32_t i;
    if (n < 0) {
        printf("%c %d\n", tag, (int)n);
        return;
    }
    printf("%c ", tag);
    for (i = 0; i < n; i++) printf("%02x", p[i]);
    printf("\n");
}

int main(void)
{
    while (fgets(line, sizeof line, stdin) != NULL) {
        char cmd = line[0];
        char keyhex[80];
        unsigned long net, sender, boot, ctr;
        if (cmd == 'N' && sscanf(line + 2, "%79s", keyhex) == 1) {
            uint8_t h[4];
            unhex(keyhex, key, sizeof key);
            crypto_blake2b_keyed(h, 4, key, 32, (const uint8_t *)"crossl-edge network id v1", 25);
            printf("N %lu\n", (unsigned long)crossl_seal_get_u32(h));
        } else if (cmd == 'S' && sscanf(line + 2, "%79s %lu %lu %lu %lu %4199s", keyhex, &net,
                                        &sender, &boot, &ctr, hexbuf) == 6) {
            crossl_sealer_t s;
            size_t n;
            unhex(keyhex, key, sizeof key);
            n = unhex(hexbuf, in, sizeof in);
            s.key = key;
            s.network = (uint32_t)net;
            s.sender = (uint32_t)sender;
            s.boot = (uint32_t)boot;
            s.counter = (uint32_t)ctr;
            s.exhausted = 0u;
            put_hex('S', out, crossl_seal(&s, in, n, out, sizeof out));
        } else if ((cmd == 'O' || cmd == 'B') &&
                   sscanf(line + 2, "%79s %lu %4199s", keyhex, &net, hexbuf) == 3) {
            size_t n;
            unhex(keyhex, key, sizeof key);
            n = unhex(hexbuf, in, sizeof in);
            put_hex(cmd, out, cmd == 'O'
                ? crossl_seal_open(key, (uint32_t)net, in, n, out, sizeof out, NULL)
                : crossl_seal_open_beacon(key, (uint32_t)net, &phone, in, n, out, sizeof out));
        } else {
            printf("? %s", line);
        }
        fflush(stdout);
    }
    return 0;
}
