/* Test harness for the generated node example (tests/test_firmware.py fills in PFX = crossl_<m>,
 * PFXM = CROSSL_<M>): pushes harness_data.h's raw samples through <m>_node_push() with a stub
 * invoke (copies a latent made in Python) and prints every INPUT window and FRAME in hex.
 * Host build: also prints the model array (checked against the .tflite). -DCROSSL_QEMU: runs on
 * QEMU mps2-an386 (Cortex-M4) and reports through semihosting. */
#include <stdint.h>
#include <string.h>
#include "crossl_frame.h"
#include "PFX_node.h"
#include "harness_data.h"
#ifdef CROSSL_QEMU
extern uint32_t _estack, _sidata, _sdata, _edata, _sbss, _ebss;
void reset_handler(void);
int main(void);
__attribute__((section(".isr_vector"), used)) static void (*const vectors[4])(void) = {
    (void (*)(void))(uintptr_t)&_estack, reset_handler, reset_handler, reset_handler};
static void semihost(uint32_t op, const void *arg)
{
    register uint32_t r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
}
static void put(const char *s) { semihost(0x04u, s); }
void reset_handler(void)
{
    uint32_t *src = &_sidata, *dst = &_sdata;
    static const uint32_t args[2] = {0x20026u, 0u};
    while (dst < &_edata) *dst++ = *src++;
    for (dst = &_sbss; dst < &_ebss; dst++) *dst = 0u;
    main();
    semihost(0x18u, (const void *)(uintptr_t)args[0]);
    for (;;) {
    }
}
#else
#include <stdio.h>
#include "PFX_model.h"
static void put(const char *s) { fputs(s, stdout); }
#endif
static char line[2u * (PFXM_INPUT_SIZE + PFXM_FRAME_SIZE) + 16u];
static void put_hex(const char *tag, const void *data, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const uint8_t *p = (const uint8_t *)data;
    size_t i, o = strlen(tag);
    memcpy(line, tag, o);
    line[o++] = ' ';
    for (i = 0; i < n; i++) {
        line[o++] = hex[p[i] >> 4];
        line[o++] = hex[p[i] & 15u];
    }
    line[o++] = '\n';
    line[o] = '\0';
    put(line);
}
int PFX_invoke(const int8_t *input, int8_t *latent)
{
    put_hex("INPUT", input, PFXM_INPUT_SIZE);
    memcpy(latent, harness_latent, PFXM_LATENT_DIM);
    return 0;
}
int PFX_send(const uint8_t *frame, size_t len)
{
    put_hex("FRAME", frame, len);
    return 0;
}
static PFX_node_t node;
int main(void)
{
    uint32_t i;
    int32_t frames = 0, r;
#ifndef CROSSL_QEMU
    if (((uintptr_t)PFX_model & 15u) != 0u || PFX_model_len != PFXM_MODEL_LEN) return 1;
    for (i = 0; i < PFX_model_len; i++) printf("%02x", PFX_model[i]);
    printf("\n");
#endif
    PFX_node_init(&node);
    for (i = 0; i < HARNESS_N; i++) {
        r = PFX_node_push(&node, &harness_samples[i * PFXM_CHANNELS], 1000000ull + 100000ull * i);
        if (r < 0) return 1;
        frames += r > 0;
    }
    put(frames == HARNESS_FRAMES ? "RESULT PASS\n" : "RESULT FAIL\n");
    return 0;
}
