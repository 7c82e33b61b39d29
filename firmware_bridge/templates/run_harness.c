/* crossl-edge run harness (C99), written by `crossl-edge firmware --build`; PFX = crossl_<m>,
 * PFXM = CROSSL_<M>. Pushes every sample of run_data.h's windows through PFX_node_push() (the
 * generated node loop with the real TFLite Micro invoke) and prints each frame in hex, then the
 * arena used, the invoke time of RUN_REPEAT more invokes and the stack used.
 * -DCROSSL_RUN_M4: bare-metal Cortex-M4F on QEMU mps2-an386, output through semihosting, time from
 * SysTick (QEMU -icount: virtual time = instructions; calibrated against a 2-instruction loop),
 * stack measured by painting; with -DCROSSL_RUN_PROFILE then one invoke timed per op
 * (run_profile.cc: "OP <k> <ticks>").
 * Otherwise: a host program printing to stdout. */
#include <stdint.h>
#include <string.h>
#include "crossl_frame.h"
#include "PFX_node.h"
#include "run_data.h"

#define RUN_LINE_BYTES (2u * PFXM_FRAME_SIZE + 64u)
#include "run_io.h"

#ifdef CROSSL_RUN_M4
int PFX_profile(const int8_t *input);
#endif
static uint8_t sent[PFXM_FRAME_SIZE];
static size_t sent_len;

/* The radio: keep the frame; it is printed after the timed push returns. */
int PFX_send(const uint8_t *frame, size_t len)
{
    if (len > sizeof sent) return -1;
    memcpy(sent, frame, len);
    sent_len = len;
    return 0;
}

static PFX_node_t node;

int main(void)
{
    uint32_t w, t, k = 0u;
    uint64_t t0;
    int32_t r;
    int8_t latent[PFXM_LATENT_DIM];
#ifdef CROSSL_RUN_M4
    paint_stack();
    t0 = ticks();
    spin(RUN_SPIN);
    put_record("CAL", 2ull * RUN_SPIN, ticks() - t0);
#endif
    PFX_node_init(&node);
    for (w = 0u; w < RUN_WINDOWS; w++) {
        for (t = 0u; t < PFXM_WINDOW; t++, k++) {
            const float *s = &run_samples[(size_t)k * PFXM_CHANNELS];
            sent_len = 0u;
            t0 = ticks();
            r = PFX_node_push(&node, s, RUN_T0_US + RUN_DT_US * (uint64_t)k);
            t0 = ticks() - t0;
            if (r < 0) {
                put_record("ERROR", w, (uint64_t)(uint32_t)-r);
                put("RESULT FAIL\n");
                return 1;
            }
            if (r > 0) {
                put_record("WINDOW", w, t0);
                put_frame(sent, sent_len);
            }
        }
    }
    put_record("ARENA", PFX_tflm_arena_used(), PFXM_ARENA_SIZE);
    for (w = 0u; w < RUN_REPEAT; w++) {
        t0 = ticks();
        r = PFX_invoke(node.input, latent);
        t0 = ticks() - t0;
        if (r != 0) {
            put("RESULT FAIL\n");
            return 1;
        }
        put_record("INVOKE", w, t0);
    }
#ifdef CROSSL_RUN_M4
    put_record("STACK", stack_used(), 0u);
#endif
#ifdef CROSSL_RUN_PROFILE
    r = PFX_profile(node.input); /* after the stack reading: its interpreter is extra */
    if (r != 0) {
        put_record("PROFILE_ERROR", (uint64_t)(uint32_t)-r, 0u);
        put("RESULT FAIL\n");
        return 1;
    }
#endif
    put("RESULT PASS\n");
    return 0;
}
