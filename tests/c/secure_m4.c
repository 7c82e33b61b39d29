/* crossl_secure.h on an emulated Cortex-M4F (QEMU mps2-an386 -icount), for tests/test_secure_c.py
 * and benchmarks/secure_frames.py. Seals the golden v2 frame (secure_data.h: key, frame, beacon,
 * nonce), opens it, checks a forged beacon, and times each step with SysTick calibrated against a
 * 2-instruction loop: prints "CAL <instructions> <ticks>", "<STEP> <ticks>" per step, the sealed
 * bytes ("SEALED <hex>") and "RESULT PASS|FAIL" through semihosting. */
#include <stdint.h>
#include <string.h>

#include "crossl_frame.h"
#include "crossl_secure.h"
#include "secure_data.h"

extern uint32_t _estack, _sidata, _sdata, _edata, _sbss, _ebss;
void reset_handler(void);
void fault_handler(void);
void systick_handler(void);
int main(void);

__attribute__((section(".isr_vector"), used)) static void (*const vectors[16])(void) = {
    (void (*)(void))(uintptr_t)&_estack, reset_handler, fault_handler, fault_handler,
    fault_handler, fault_handler, fault_handler, 0, 0, 0, 0, fault_handler, fault_handler, 0,
    fault_handler, systick_handler};

static void semihost(uint32_t op, const void *arg)
{
    register uint32_t r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
}
static void put(const char *s) { semihost(0x04u, s); }
static void run_exit(int ok)
{
    semihost(0x18u, (const void *)(uintptr_t)(ok ? 0x20026u : 0x20024u));
    for (;;) {
    }
}
void fault_handler(void)
{
    put("RESULT FAULT\n");
    run_exit(0);
}
static volatile uint32_t wraps;
void systick_handler(void) { wraps++; }
#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)
#define CPACR (*(volatile uint32_t *)0xE000ED88u)
static uint64_t ticks(void)
{
    uint32_t w, v;
    do {
        w = wraps;
        v = SYST_CVR;
    } while (w != wraps);
    return ((uint64_t)w << 24) + (0xFFFFFFu - v);
}
static void spin(uint32_t n) /* exactly 2 instructions per iteration */
{
    __asm__ volatile("1: subs %0, %0, #1\n\tbne 1b" : "+r"(n) : : "cc");
}
void reset_handler(void)
{
    uint32_t *src = &_sidata, *dst = &_sdata;
    while (dst < &_edata) *dst++ = *src++;
    for (dst = &_sbss; dst < &_ebss; dst++) *dst = 0u;
    CPACR |= 0xFu << 20; /* CP10, CP11: the FPU (hard-float code may use its registers) */
    __asm__ volatile("dsb\n\tisb");
    SYST_RVR = 0xFFFFFFu;
    SYST_CVR = 0u;
    SYST_CSR = 7u;
    run_exit(main() == 0);
}

static char line[600];
static void put_u64(const char *tag, uint64_t v)
{
    char tmp[24];
    size_t n = strlen(tag), k = 0;
    memcpy(line, tag, n);
    line[n++] = ' ';
    do {
        tmp[k++] = (char)('0' + (int)(v % 10u));
        v /= 10u;
    } while (v != 0u);
    while (k > 0) line[n++] = tmp[--k];
    line[n++] = '\n';
    line[n] = '\0';
    put(line);
}
static void put_hex(const char *tag, const uint8_t *p, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t i, n = strlen(tag);
    memcpy(line, tag, n);
    line[n++] = ' ';
    for (i = 0; i < len; i++) {
        line[n++] = hex[p[i] >> 4];
        line[n++] = hex[p[i] & 15u];
    }
    line[n++] = '\n';
    line[n] = '\0';
    put(line);
}

static uint8_t sealed[sizeof secure_frame + CROSSL_SEAL_OVERHEAD];
static uint8_t opened[sizeof secure_frame];
static uint8_t beacon_sealed[sizeof secure_beacon + CROSSL_SEAL_OVERHEAD];
static uint8_t plain_copy[sizeof secure_frame];

int main(void)
{
    crossl_sealer_t s;
    crossl_seal_peer_t phone;
    uint64_t t0;
    int32_t n, m, b, f;
    int ok;
    spin(1000u); /* let SysTick load its reload value (CVR reads 0 until then) */
    t0 = ticks();
    spin(1000000u);
    put_u64("CAL_INSTRUCTIONS", 2000000u);
    put_u64("CAL_TICKS", ticks() - t0);
    t0 = ticks(); /* the plain frame's own cost: copy + CRC-32, as crossl_frame_encode does */
    memcpy(plain_copy, secure_frame, sizeof secure_frame);
    crossl_frame_put_u32(plain_copy + sizeof plain_copy - 4u,
                         crossl_frame_crc32_update(0u, plain_copy, sizeof plain_copy - 4u));
    put_u64("CRC", ticks() - t0);
    s.key = secure_key;
    s.network = SECURE_NETWORK;
    s.sender = SECURE_SENDER;
    s.boot = SECURE_BOOT;
    s.counter = SECURE_COUNTER;
    s.exhausted = 0u;
    t0 = ticks();
    n = crossl_seal(&s, secure_frame, sizeof secure_frame, sealed, sizeof sealed);
    put_u64("SEAL", ticks() - t0);
    put_hex("SEALED", sealed, n > 0 ? (size_t)n : 0u);
    t0 = ticks();
    m = crossl_seal_open(secure_key, SECURE_NETWORK, sealed, (size_t)n, opened, sizeof opened,
                         NULL);
    put_u64("OPEN", ticks() - t0);
    s.sender = SECURE_PHONE;
    b = crossl_seal(&s, secure_beacon, sizeof secure_beacon, beacon_sealed, sizeof beacon_sealed);
    memset(&phone, 0, sizeof phone);
    t0 = ticks();
    b = crossl_seal_open_beacon(secure_key, SECURE_NETWORK, &phone, beacon_sealed, (size_t)b,
                                opened, sizeof opened);
    put_u64("BEACON", ticks() - t0);
    beacon_sealed[sizeof beacon_sealed - 1u] ^= 1u; /* a forged tag */
    f = crossl_seal_open_beacon(secure_key, SECURE_NETWORK, &phone, beacon_sealed,
                                sizeof beacon_sealed, opened, sizeof opened);
    ok = n == (int32_t)sizeof sealed && m == (int32_t)sizeof secure_frame && b == 32 &&
         f == CROSSL_SEAL_ERR_BAD_TAG;
    put(ok ? "RESULT PASS\n" : "RESULT FAIL\n");
    return ok ? 0 : 1;
}
