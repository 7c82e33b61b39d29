/* Runs crossl_frame.h on an emulated Cortex-M4 (QEMU mps2-an386) and reports via semihosting:
 * encodes the golden 96-d int8 frame (tests/golden/frame_v1_int8_96.bin), decodes it, COBS
 * round-trips it. Prints "FRAME <hex>", "DECODE <status>", "RESULT PASS|FAIL". */
#include "crossl_frame.h"

extern uint32_t _estack, _sidata, _sdata, _edata, _sbss, _ebss;
void reset_handler(void);
void fault_handler(void);
int main(void);

__attribute__((section(".isr_vector"), used)) static void (*const vectors[4])(void) = {
    (void (*)(void))(uintptr_t)&_estack, reset_handler, fault_handler, fault_handler};

static void semihost(uint32_t op, const void *arg)
{
    register uint32_t r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
}

static void put(const char *s) { semihost(0x04u, s); } /* SYS_WRITE0 */

static void semihost_exit(int ok)
{
    register uint32_t r0 __asm__("r0") = 0x18u; /* SYS_EXIT */
    register uint32_t r1 __asm__("r1") = ok ? 0x20026u : 0x20024u; /* AppExit / RunTimeError */
    __asm__ volatile("bkpt 0xAB" : : "r"(r0), "r"(r1) : "memory");
    for (;;) {
    }
}

void fault_handler(void)
{
    put("RESULT FAULT\n");
    semihost_exit(0);
}

void reset_handler(void)
{
    uint32_t *src = &_sidata, *dst = &_sdata;
    while (dst < &_edata) *dst++ = *src++;
    for (dst = &_sbss; dst < &_ebss; dst++) *dst = 0u;
    semihost_exit(main() == 0);
}

static uint8_t frame[CROSSL_FRAME_OVERHEAD + 96u];
static uint8_t wire[CROSSL_FRAME_COBS_MAX_SIZE(sizeof frame)];
static uint8_t back[sizeof frame];
static char line[2u * sizeof frame + 16u];

int main(void)
{
    static const char hex[] = "0123456789abcdef";
    int8_t latent[96], copy[96];
    crossl_frame_header_t h;
    crossl_frame_t f;
    int32_t size, enc, dec, i;
    crossl_frame_status_t st;
    for (i = 0; i < 96; i++) latent[i] = (int8_t)((i * 37 + 11) % 256 - 128);
    h.modality_id = 0u;
    h.dtype = CROSSL_FRAME_DTYPE_INT8;
    h.flags = 0u;
    h.length = 96u;
    h.seq = 123456u;
    h.timestamp_us = 1700000000123456ull;
    h.fingerprint = 0xC0FFEE42u;
    size = crossl_frame_encode(&h, latent, frame, sizeof frame);
    if (size != (int32_t)sizeof frame) return 1;
    memcpy(line, "FRAME ", 6u);
    for (i = 0; i < size; i++) {
        line[6 + 2 * i] = hex[frame[i] >> 4];
        line[7 + 2 * i] = hex[frame[i] & 0x0Fu];
    }
    memcpy(line + 6 + 2 * size, "\n", 2u);
    put(line);
    st = crossl_frame_decode(frame, (size_t)size, &f);
    put(st == CROSSL_FRAME_OK ? "DECODE 0\n" : "DECODE error\n");
    if (st != CROSSL_FRAME_OK || crossl_frame_copy_latent(&f, copy, sizeof copy) != 96 ||
        memcmp(copy, latent, 96u) != 0 || f.header.timestamp_us != h.timestamp_us) return 1;
    enc = crossl_frame_cobs_encode(frame, (size_t)size, wire, sizeof wire);
    dec = crossl_frame_cobs_decode(wire, (size_t)enc, back, sizeof back);
    frame[40] ^= 0x20u;
    if (enc < 0 || memchr(wire, 0, (size_t)enc) != NULL || dec != size ||
        memcmp(back, frame, 40u) != 0 ||
        crossl_frame_decode(frame, (size_t)size, &f) != CROSSL_FRAME_ERR_BAD_CRC) return 1;
    put("RESULT PASS\n");
    return 0;
}
