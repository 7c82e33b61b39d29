/* Cortex-M4 code-size probe for crossl_frame.h (compiled by tests/test_frame_c.py, never run).
 * Default: what a sensor node links (encode + COBS for a UART). -DCROSSL_SIZE_FULL adds the
 * receiving side (COBS decode, frame decode, latent copy). */
#include "crossl_frame.h"

int32_t node_send_latent(const int8_t *latent, uint16_t n, uint32_t seq, uint64_t t_us,
                         uint8_t *wire, size_t cap);
int32_t node_send_latent(const int8_t *latent, uint16_t n, uint32_t seq, uint64_t t_us,
                         uint8_t *wire, size_t cap)
{
    uint8_t frame[CROSSL_FRAME_OVERHEAD + 128u];
    crossl_frame_header_t h;
    int32_t size, enc;
    if (n > 128u || cap < 2u) return CROSSL_FRAME_ERR_INVALID_ARGUMENT;
    h.modality_id = 0u;
    h.dtype = CROSSL_FRAME_DTYPE_INT8;
    h.flags = 0u;
    h.length = n;
    h.seq = seq;
    h.timestamp_us = t_us;
    h.fingerprint = 0xC0FFEE42u;
    size = crossl_frame_encode(&h, latent, frame, sizeof frame);
    if (size < 0) return size;
    enc = crossl_frame_cobs_encode(frame, (size_t)size, wire, cap - 1u);
    if (enc < 0) return enc;
    wire[enc] = 0u; /* delimiter */
    return enc + 1;
}

#ifdef CROSSL_SIZE_FULL
int32_t gateway_receive(uint8_t *packet, size_t n, float *latent, size_t cap,
                        crossl_frame_header_t *header);
int32_t gateway_receive(uint8_t *packet, size_t n, float *latent, size_t cap,
                        crossl_frame_header_t *header)
{
    crossl_frame_t f;
    int32_t size = crossl_frame_cobs_decode(packet, n, packet, n); /* in place */
    crossl_frame_status_t st;
    if (size < 0) return size;
    st = crossl_frame_decode(packet, (size_t)size, &f);
    if (st != CROSSL_FRAME_OK) return st;
    *header = f.header;
    return crossl_frame_copy_latent(&f, latent, cap * sizeof(float));
}
#endif
