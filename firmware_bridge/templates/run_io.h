/* crossl-edge run harness I/O (C99), included by run_harness.c and the device harness; the
 * includer defines RUN_LINE_BYTES (the longest line printed). -DCROSSL_RUN_M4: bare-metal
 * Cortex-M4F start-up on QEMU mps2-an386 (vectors, .data/.bss, FPU, SysTick clock, stack paint),
 * output through semihosting; otherwise stdout. put_record() and put_frame() print the records
 * the toolkit parses. */
#ifndef CROSSL_RUN_IO_H
#define CROSSL_RUN_IO_H
#include <stdint.h>
#include <string.h>
#ifndef RUN_LINE_BYTES
#error "define RUN_LINE_BYTES before including run_io.h"
#endif

#ifdef CROSSL_RUN_M4
extern uint32_t _estack, _sidata, _sdata, _edata, _sbss, _ebss;
extern void (*__init_array_start[])(void), (*__init_array_end[])(void);
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
static void put(const char *s) { semihost(0x04u, s); } /* SYS_WRITE0 */
static void run_exit(int ok)
{
    /* SYS_EXIT, AArch32: r1 is the reason itself (ApplicationExit / RunTimeErrorUnknown) */
    semihost(0x18u, (const void *)(uintptr_t)(ok ? 0x20026u : 0x20024u));
    for (;;) {
    }
}
void fault_handler(void)
{
    put("RESULT FAULT\n");
    run_exit(0);
}
static volatile uint32_t systick_wraps;
void systick_handler(void) { systick_wraps++; }
#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)
#define CPACR (*(volatile uint32_t *)0xE000ED88u)
static uint64_t ticks(void)
{
    uint32_t w, v;
    do {
        w = systick_wraps;
        v = SYST_CVR;
    } while (w != systick_wraps);
    return ((uint64_t)w << 24) + (0xFFFFFFu - v);
}
/* For run_profile.cc (C++): the clock and the record printer. */
uint64_t run_ticks(void);
void run_put_record(const char *tag, uint64_t a, uint64_t b);
uint64_t run_ticks(void) { return ticks(); }
static void spin(uint32_t n) /* exactly 2 instructions per iteration */
{
    __asm__ volatile("1: subs %0, %0, #1\n\tbne 1b" : "+r"(n) : : "cc");
}
#define PAINT 0xC5C5C5C5u
static void paint_stack(void)
{
    uint32_t *p = &_ebss, *sp;
    __asm__ volatile("mov %0, sp" : "=r"(sp));
    while (p < sp - 16) *p++ = PAINT;
}
static uint32_t stack_used(void)
{
    uint32_t *p = &_ebss;
    while (p < &_estack && *p == PAINT) p++;
    return (uint32_t)((uintptr_t)&_estack - (uintptr_t)p);
}
void reset_handler(void)
{
    uint32_t *src = &_sidata, *dst = &_sdata;
    void (**f)(void);
    while (dst < &_edata) *dst++ = *src++;
    for (dst = &_sbss; dst < &_ebss; dst++) *dst = 0u;
    CPACR |= 0xFu << 20; /* CP10, CP11: the FPU */
    __asm__ volatile("dsb\n\tisb");
    for (f = __init_array_start; f < __init_array_end; f++) (*f)();
    SYST_RVR = 0xFFFFFFu;
    SYST_CVR = 0u;
    SYST_CSR = 7u; /* enable, interrupt, processor clock */
    run_exit(main() == 0);
}
#else
#include <stdio.h>
static void put(const char *s) { fputs(s, stdout); }
static uint64_t ticks(void) { return 0u; }
#endif

static char line[RUN_LINE_BYTES];

static char *put_u64(char *o, uint64_t v)
{
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + (int)(v % 10u));
        v /= 10u;
    } while (v != 0u);
    while (n > 0) *o++ = tmp[--n];
    return o;
}
static void put_record(const char *tag, uint64_t a, uint64_t b)
{
    char *o = line;
    size_t n = strlen(tag);
    memcpy(o, tag, n);
    o += n;
    *o++ = ' ';
    o = put_u64(o, a);
    *o++ = ' ';
    o = put_u64(o, b);
    *o++ = '\n';
    *o = '\0';
    put(line);
}
#ifdef CROSSL_RUN_M4
void run_put_record(const char *tag, uint64_t a, uint64_t b) { put_record(tag, a, b); }
#endif
static void put_frame(const uint8_t *p, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t i, o = 6u;
    memcpy(line, "FRAME ", 6u);
    for (i = 0; i < n; i++) {
        line[o++] = hex[p[i] >> 4];
        line[o++] = hex[p[i] & 15u];
    }
    line[o++] = '\n';
    line[o] = '\0';
    put(line);
}

#endif /* CROSSL_RUN_IO_H */
