"""The generated sensor-node loop (C99): ring buffer of raw samples -> normalized, quantized
window -> invoke hook -> latent frame -> send hook; with the phone's sync beacons, windows follow
the phone's grid and go out as v2 frames (time base in crossl_frame.h), else v1 as before. With a
network key (``sealed``) frames are sealed and beacons verified before use (crossl_secure.h).
"""

from __future__ import annotations

from crossl_edge.firmware_bridge.codegen import NodeSpec, banner


def _sealed_header(p: str, m: str) -> dict[str, str]:
    return {
        "include": '#include "../common/crossl_secure.h" /* sealed frames (Monocypher) */\n'
                   '#include "../common/crossl_network_key.h"\n',
        "macros": f"""/* The frame could not be sealed: no boot counter ({p}_next_boot
 * failed) or the per-boot counter is spent (reboot). Nothing unsealed is ever sent. */
#define {m}_ERR_SEAL (-23)
#define {m}_SEALED_SIZE CROSSL_SEAL_SIZE({m}_FRAME_SIZE_V2)
""",
        "members": f"""    crossl_sealer_t sealer;   /* key, node id, boot, message counter */
    crossl_seal_peer_t phone; /* the phone session whose beacons were taken */
    uint8_t sealed[{m}_SEALED_SIZE];
    uint8_t opened[64];       /* a verified beacon */
""",
        "hooks": f"""/* The boot counter, kept in non-volatile memory: read it, add 1, write it
 * back, and set *boot to the new value (0 on success). {p}_node_init calls it
 * once; nonces are (node id, boot, counter), so a boot value must never come back. The weak
 * stand-in fails: a node without it sends nothing rather than repeat a nonce. */
int {p}_next_boot(uint32_t *boot);
""",
    }


def node_header(spec: NodeSpec, *, sealed: bool = False) -> str:
    p, m = spec.prefix, spec.macro
    sx = _sealed_header(p, m) if sealed else dict.fromkeys(("include", "macros", "members",
                                                            "hooks"), "")
    return f"""{banner(spec, f"Sensor-node loop of modality '{spec.name}': API and hooks.")}
#ifndef {m}_NODE_H
#define {m}_NODE_H

#include <stddef.h>
#include <stdint.h>

#include "../common/crossl_frame.h" /* the firmware folder's layout: <m>/ beside common/ */
#include "{p}_contract.h"
{sx["include"]}
/* Samples between two windows (a window every HOP samples once the first one is full);
 * default WINDOW: non-overlapping windows, as in training. */
#ifndef {m}_HOP
#define {m}_HOP {m}_WINDOW
#endif
#if {m}_HOP < 1
#error "{m}_HOP must be at least 1"
#endif

/* {p}_node_push() results besides a frame size (> 0), 0 (window not complete) and the
 * negative crossl_frame_status_t values of crossl_frame_encode (-1..-10). */
#define {m}_ERR_INVOKE (-20)
#define {m}_ERR_SEND (-21)
/* {p}_node_on_beacon(): the beacon comes from a phone running another bundle. */
#define {m}_ERR_BEACON (-22)
/* The sample rate in millihertz (the grid arithmetic is integer) and a v2 frame's size. */
#define {m}_SAMPLE_RATE_MHZ {round(spec.sample_rate_hz * 1000)}u
#define {m}_FRAME_SIZE_V2 ({m}_FRAME_SIZE + (CROSSL_FRAME_OVERHEAD_V2 - CROSSL_FRAME_OVERHEAD))
{sx["macros"]}
typedef struct {p}_node {{
    crossl_sync_t sync;  /* the phone clock, from beacons (crossl_frame.h) */
    crossl_grid_t grid;  /* which grid window the samples complete */
    uint16_t boot;       /* set after init: a counter kept across reboots (v2 frames carry it) */
    float ring[{m}_WINDOW * {m}_CHANNELS]; /* raw samples, slot-major */
    uint32_t head;   /* next slot to write; the oldest sample once the ring is full */
    uint32_t filled; /* samples held, up to WINDOW */
    uint32_t since;  /* samples pushed since the last window */
    uint32_t seq;    /* windows so far: the next frame's seq */
    int8_t input[{m}_INPUT_SIZE];
    int8_t latent[{m}_LATENT_DIM];
    uint8_t frame[{m}_FRAME_SIZE_V2];
{sx["members"]}}} {p}_node_t;

#ifdef __cplusplus
extern "C" {{
#endif

/* Hooks the firmware provides. invoke: run the encoder on one window (crossl_{spec.name}_tflm.cc
 * implements it with TFLite Micro); send: hand one frame to the radio. Both return 0 on success.
 * node_example.c has weak stand-ins that fail, so it links before they exist. */
int {p}_invoke(const int8_t *input, int8_t *latent);
int {p}_send(const uint8_t *frame, size_t len);
size_t {p}_tflm_arena_used(void);
{sx["hooks"]}
void {p}_node_init({p}_node_t *node);
/* Normalize and quantize the ring's window (oldest sample first) into input[INPUT_SIZE]. */
void {p}_quantize_window(const {p}_node_t *node, int8_t *input);
/* Push one sample (CHANNELS raw values) taken at t_us on the node's monotonic clock. When a
 * window completes: quantize, invoke, encode a frame (timestamp t_us) and send it. Before the
 * first beacon: every HOP samples, a v1 frame (seq = windows since boot). After it: the sample
 * goes to its slot on the phone's grid and a window goes out, as a v2 frame, only when all its
 * samples arrived (window = grid index). Returns the frame size sent, 0 when no window
 * completed, or a negative error. */
int32_t {p}_node_push({p}_node_t *node, const float *sample, uint64_t t_us);
/* Take a message from the phone received at t_us: a sync beacon re-estimates the phone clock.
 * Returns CROSSL_SYNC_ADJUSTED (0), CROSSL_SYNC_RESYNC (1: a new grid, the window in progress
 * is dropped), {m}_ERR_BEACON or a negative crossl_frame_status_t (not a valid beacon). */
int {p}_node_on_beacon({p}_node_t *node, const uint8_t *msg, size_t len, uint64_t t_us);
/* Local time at which to take the next grid sample (program the sampling timer with it so
 * that samples land on the grid; 0 before the first beacon). */
uint64_t {p}_node_next_sample_us(const {p}_node_t *node, uint64_t now_us);

#ifdef __cplusplus
}}
#endif

#endif /* {m}_NODE_H */
"""


def _sealed_source(p: str, m: str) -> dict[str, str]:
    return {
        "weak": f"""
{m}_WEAK int {p}_next_boot(uint32_t *boot)
{{
    (void)boot;
    return -1;
}}
""",
        "init": f"""    {{
        uint32_t boot;
        node->sealer.key = crossl_network_key;
        node->sealer.network = CROSSL_NETWORK_ID;
        node->sealer.sender = {m}_NODE_ID;
        node->sealer.exhausted = 1u; /* until a boot counter is known */
        if ({p}_next_boot(&boot) == 0) {{
            node->sealer.boot = boot;
            node->sealer.exhausted = 0u;
            node->boot = (uint16_t)boot;
        }}
    }}
""",
        "send": f"""        n = crossl_seal(&node->sealer, node->frame, (size_t)n, node->sealed,
                        sizeof node->sealed);
        if (n < 0) return {m}_ERR_SEAL;
        if ({p}_send(node->sealed, (size_t)n) != 0) return {m}_ERR_SEND;""",
        "open": """    crossl_frame_status_t st;
    int32_t n = crossl_seal_open_beacon(crossl_network_key, CROSSL_NETWORK_ID,
                                        &node->phone, msg, len, node->opened,
                                        sizeof node->opened);
    if (n < 0) return (int)n; /* forged, replayed, another network's, or not sealed */
    st = crossl_beacon_decode(node->opened, (size_t)n, &b);""",
    }


def node_source(spec: NodeSpec, *, sealed: bool = False) -> str:
    p, m = spec.prefix, spec.macro
    sx = _sealed_source(p, m) if sealed else {
        "weak": "", "init": "",
        "send": f"        if ({p}_send(node->frame, (size_t)n) != 0) return {m}_ERR_SEND;",
        "open": "    crossl_frame_status_t st = crossl_beacon_decode(msg, len, &b);"}
    return f"""{banner(spec, f"Sensor-node loop of modality '{spec.name}' (example, C99).")}
/* Usage (the sensor driver and the radio are yours):
 *
 *     static {p}_node_t node;
 *     {p}_node_init(&node);
 *     for (;;) {{
 *         float sample[{m}_CHANNELS];   (raw units, the contract's channel order)
 *         read_sensor(sample);
 *         {p}_node_push(&node, sample, micros());   (sends a frame per window)
 *     }}
 *
 * Build: cc -std=c99 -I. -I../common -c node_example.c (crossl_frame.h is in ../common). */
#include <string.h>

#include "crossl_frame.h"
#include "{p}_node.h"

#if defined(__GNUC__) || defined(__clang__)
#define {m}_WEAK __attribute__((weak))
/* Weak stand-ins: link the real hooks (crossl_{spec.name}_tflm.cc, your radio) to replace them. */
{m}_WEAK int {p}_invoke(const int8_t *input, int8_t *latent)
{{
    (void)input;
    (void)latent;
    return -1;
}}

{m}_WEAK int {p}_send(const uint8_t *frame, size_t len)
{{
    (void)frame;
    (void)len;
    return -1;
}}
{sx["weak"]}#endif

void {p}_node_init({p}_node_t *node)
{{
    memset(node, 0, sizeof *node);
{sx["init"]}}}

/* x_norm / INPUT_SCALE rounded half to even (numpy's rule), plus the zero point, saturated.
 * Written without libm; NaN maps to the zero point. Needs IEEE float32 arithmetic (no
 * -ffast-math, no x87 excess precision). */
static int8_t {p}_quantize(float x, float mean, float std_dev)
{{
    float y = ((x - mean) / std_dev) / {m}_INPUT_SCALE;
    float r;
    int32_t i;
    if (y != y) y = 0.0f;
    if (y > 512.0f) y = 512.0f;
    if (y < -512.0f) y = -512.0f;
    i = (int32_t)y; /* toward zero */
    r = y - (float)i; /* exact */
    if (r > 0.5f || (r == 0.5f && (i & 1))) i++;
    else if (r < -0.5f || (r == -0.5f && (i & 1))) i--;
    i += {m}_INPUT_ZERO_POINT;
    if (i > 127) i = 127;
    if (i < -128) i = -128;
    return (int8_t)i;
}}

void {p}_quantize_window(const {p}_node_t *node, int8_t *input)
{{
    uint32_t t, c, slot = node->filled < {m}_WINDOW ? 0u : node->head;
    for (t = 0u; t < {m}_WINDOW; t++) {{
        const float *s = &node->ring[slot * {m}_CHANNELS];
        for (c = 0u; c < {m}_CHANNELS; c++) {{
            input[t * {m}_CHANNELS + c] =
                {p}_quantize(s[c], {p}_norm_mean[c], {p}_norm_std[c]);
        }}
        slot = slot + 1u == {m}_WINDOW ? 0u : slot + 1u;
    }}
}}

static int32_t {p}_node_window({p}_node_t *node, uint64_t t_us, int64_t window)
{{
    crossl_frame_header_t h;
    crossl_frame_v2_t v2;
    {p}_quantize_window(node, node->input);
    h.seq = node->seq++; /* counts windows, so a failed one leaves a gap the phone sees */
    if ({p}_invoke(node->input, node->latent) != 0) return {m}_ERR_INVOKE;
    h.modality_id = (uint8_t){m}_MODALITY_ID;
    h.dtype = (uint8_t)CROSSL_FRAME_DTYPE_INT8;
    h.flags = 0u;
    h.length = (uint16_t){m}_LATENT_DIM;
    h.timestamp_us = t_us;
    h.fingerprint = {m}_BUNDLE_FINGERPRINT;
    {{
        int32_t n;
        v2.window = (uint32_t)window;
        v2.epoch = node->sync.epoch;
        v2.boot = node->boot;
        /* not synced (window < 0): a v1 frame, as before the time base */
        n = crossl_frame_encode_version(&h, window < 0 ? NULL : &v2, node->latent, node->frame,
                                        sizeof node->frame);
        if (n < 0) return n;
{sx["send"]}
        return n;
    }}
}}

int {p}_node_on_beacon({p}_node_t *node, const uint8_t *msg, size_t len, uint64_t t_us)
{{
    crossl_beacon_t b;
    int r;
{sx["open"]}
    if (st != CROSSL_FRAME_OK) return (int)st;
    if (b.fingerprint != {m}_BUNDLE_FINGERPRINT) return {m}_ERR_BEACON;
    r = crossl_sync_on_beacon(&node->sync, &b, t_us);
    if (r == CROSSL_SYNC_RESYNC) memset(&node->grid, 0, sizeof node->grid);
    return r;
}}

uint64_t {p}_node_next_sample_us(const {p}_node_t *node, uint64_t now_us)
{{
    int64_t n;
    uint64_t due;
    if (!node->sync.synced) return 0u;
    n = crossl_sync_sample_index(&node->sync, now_us, {m}_SAMPLE_RATE_MHZ);
    if (n < 0) n = 0;
    for (;; n++) {{ /* the nearest grid sample, or the one after it when that one is past */
        due = crossl_sync_sample_due(&node->sync, n, {m}_SAMPLE_RATE_MHZ);
        if ((int64_t)(due - now_us) >= 0) return due;
    }}
}}

static int32_t {p}_node_push_synced({p}_node_t *node, const float *sample, uint64_t t_us)
{{
    uint32_t c, slot;
    int64_t k, n = crossl_sync_sample_index(&node->sync, t_us, {m}_SAMPLE_RATE_MHZ);
    if (n < 0) return 0; /* before the grid's origin */
    slot = (uint32_t)(n % (int64_t){m}_WINDOW);
    for (c = 0u; c < {m}_CHANNELS; c++) node->ring[slot * {m}_CHANNELS + c] = sample[c];
    k = crossl_grid_push(&node->grid, n, {m}_WINDOW, {m}_HOP);
    if (k < 0) return 0;
    node->head = slot + 1u == {m}_WINDOW ? 0u : slot + 1u; /* the window's oldest sample */
    node->filled = {m}_WINDOW;
    return {p}_node_window(node, t_us, k);
}}

int32_t {p}_node_push({p}_node_t *node, const float *sample, uint64_t t_us)
{{
    uint32_t c;
    float *slot = &node->ring[node->head * {m}_CHANNELS];
    if (node->sync.synced) return {p}_node_push_synced(node, sample, t_us);
    for (c = 0u; c < {m}_CHANNELS; c++) slot[c] = sample[c];
    node->head = node->head + 1u == {m}_WINDOW ? 0u : node->head + 1u;
    if (node->filled < {m}_WINDOW) node->filled++;
    node->since++;
    if (node->filled < {m}_WINDOW || node->since < {m}_HOP) return 0;
    node->since = 0u;
    return {p}_node_window(node, t_us, -1);
}}
"""


SYNC_STATE_BYTES = 80 + 16 + 2   # crossl_sync_t + crossl_grid_t + boot on Cortex-M (AAPCS)


SEAL_STATE_BYTES = 24 + 16 + 64 + 36   # sealer + phone memory + opened beacon + tag/header


def node_state_bytes(spec: NodeSpec, *, sealed: bool = False) -> int:
    """sizeof(crossl_<m>_node_t) on a 32-bit Arm target (AAPCS: 8-byte aligned uint64_t)."""
    n = SYNC_STATE_BYTES + 2 + 4 * spec.window * len(spec.channels) + 4 * 4 \
        + spec.window * len(spec.channels) + spec.latent_dim + spec.frame_size + 8
    if sealed:
        n += SEAL_STATE_BYTES + spec.frame_size + 8
    return (n + 7) // 8 * 8
