/* Harness for the generated node loop's time base (tests/test_node_sync.py fills in PFX/PFXM):
 * reads a script on stdin and drives PFX_node_on_beacon / PFX_node_push / next_sample_us.
 *   B <hex> <t_us>          a message from the phone      -> "B <result>"
 *   P <t_us> <v0> .. <vC-1>  one raw sample (%a hex floats) -> [FRAME <hex>] "P <result>"
 *   N <t_us>                next grid sample due           -> "N <local us>"
 * invoke copies the quantized window into the latent (input[i % INPUT_SIZE]) so the frames
 * show exactly which samples the node put in which window. Build with ASan/UBSan. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crossl_frame.h"
#include "PFX_node.h"

int PFX_invoke(const int8_t *input, int8_t *latent)
{
    uint32_t i;
    for (i = 0; i < PFXM_LATENT_DIM; i++) latent[i] = input[i % PFXM_INPUT_SIZE];
    return 0;
}

int PFX_send(const uint8_t *frame, size_t len)
{
    size_t i;
    printf("FRAME ");
    for (i = 0; i < len; i++) printf("%02x", frame[i]);
    printf("\n");
    return 0;
}

size_t PFX_tflm_arena_used(void) { return 0u; }

static PFX_node_t node;

int main(int argc, char **argv)
{
    char cmd[2];
    PFX_node_init(&node);
    node.boot = (uint16_t)(argc > 1 ? atoi(argv[1]) : 0);
    while (scanf("%1s", cmd) == 1) {
        uint64_t t;
        if (cmd[0] == 'B') {
            char hex[512];
            uint8_t *msg;
            size_t n, i;
            if (scanf("%511s %" SCNu64, hex, &t) != 2) return 2;
            n = strlen(hex) / 2u;
            msg = (uint8_t *)malloc(n ? n : 1u); /* exact size: ASan sees any overrun */
            if (msg == NULL) return 3;
            for (i = 0; i < n; i++) {
                unsigned v;
                if (sscanf(hex + 2u * i, "%2x", &v) != 1) return 2;
                msg[i] = (uint8_t)v;
            }
            printf("B %d\n", PFX_node_on_beacon(&node, msg, n, t));
            free(msg);
        } else if (cmd[0] == 'P') {
            float sample[PFXM_CHANNELS];
            uint32_t c;
            if (scanf("%" SCNu64, &t) != 1) return 2;
            for (c = 0; c < PFXM_CHANNELS; c++) {
                if (scanf("%a", &sample[c]) != 1) return 2;
            }
            printf("P %" PRId32 "\n", PFX_node_push(&node, sample, t));
        } else if (cmd[0] == 'N') {
            if (scanf("%" SCNu64, &t) != 1) return 2;
            printf("N %" PRIu64 "\n", PFX_node_next_sample_us(&node, t));
        } else {
            return 2;
        }
    }
    return 0;
}
