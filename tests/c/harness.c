/* Host test harness for crossl_frame.h, driven by tests/test_frame_c.py (built with ASan/UBSan).
 *
 *   harness encode SPECS   one frame per line: "mod dtype flags seq ts fp n v0 .. vn-1"
 *                          (float32 values as hex bit patterns); prints the frame hex or ERR code
 *   harness decode CORPUS  records [u32 LE size][bytes]; prints OK fields values, or ERR code
 *   harness cobs CORPUS    per record: "<cobs-encoded hex> OK:<decoded hex>|ERR:<code>"
 *   harness crc CORPUS     per record: the CRC-32 as 8 hex digits
 * Every buffer is malloc'ed at its exact size so that ASan sees any overrun.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crossl_frame.h"

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1u);
    if (p == NULL) {
        fprintf(stderr, "out of memory\n");
        exit(3);
    }
    return p;
}

static void print_hex(const uint8_t *p, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) printf("%02x", p[i]);
}

static uint8_t *read_all(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    uint8_t *data;
    long n;
    if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET)) {
        fprintf(stderr, "cannot read %s\n", path);
        exit(2);
    }
    data = (uint8_t *)xmalloc((size_t)n);
    if (fread(data, 1, (size_t)n, f) != (size_t)n) exit(2);
    fclose(f);
    *size = (size_t)n;
    return data;
}

/* Calls fn(record, size) for each [u32 LE size][bytes] record, each copied to an exact buffer. */
static void for_each_record(const char *path, void (*fn)(const uint8_t *, size_t))
{
    size_t total, pos = 0;
    uint8_t *data = read_all(path, &total);
    while (pos + 4u <= total) {
        size_t n = (size_t)crossl_frame_get_u32(data + pos);
        uint8_t *rec;
        pos += 4u;
        if (n > total - pos) exit(2);
        rec = (uint8_t *)xmalloc(n);
        memcpy(rec, data + pos, n);
        fn(rec, n);
        free(rec);
        pos += n;
    }
    free(data);
}

static int cmd_encode(const char *path)
{
    FILE *f = fopen(path, "r");
    unsigned mod, dtype, flags, n, i;
    uint32_t seq, fp;
    uint64_t ts;
    if (f == NULL) return 2;
    while (fscanf(f, "%u %u %u %" SCNu32 " %" SCNu64 " %" SCNu32 " %u", &mod, &dtype, &flags, &seq,
                  &ts, &fp, &n) == 7) {
        crossl_frame_header_t h;
        uint8_t *latent = (uint8_t *)xmalloc(4u * n), *out;
        uint32_t size = crossl_frame_dtype_size(dtype), need;
        int32_t r;
        for (i = 0; i < n; i++) {
            long v;
            uint32_t bits;
            if (size == 4u) {
                if (fscanf(f, "%" SCNx32, &bits) != 1) return 2;
                memcpy(latent + 4u * i, &bits, 4u); /* native float with these bits */
            } else if (size == 2u) {
                int16_t s;
                if (fscanf(f, "%ld", &v) != 1) return 2;
                s = (int16_t)v;
                memcpy(latent + 2u * i, &s, 2u);
            } else {
                int8_t s;
                if (fscanf(f, "%ld", &v) != 1) return 2;
                s = (int8_t)v;
                memcpy(latent + i, &s, 1u);
            }
        }
        h.modality_id = (uint8_t)mod;
        h.dtype = (uint8_t)dtype;
        h.flags = (uint8_t)flags;
        h.length = (uint16_t)n;
        h.seq = seq;
        h.timestamp_us = ts;
        h.fingerprint = fp;
        need = CROSSL_FRAME_SIZE(n, size);
        out = (uint8_t *)xmalloc(need);
        if ((r = crossl_frame_encode(&h, latent, out, need)) < 0) {
            printf("ERR %d\n", (int)r);
        } else if (crossl_frame_encode(&h, latent, out, need - 1u) !=
                   CROSSL_FRAME_ERR_BUFFER_TOO_SMALL) {
            printf("CAP_NOT_CHECKED\n");
        } else {
            print_hex(out, (size_t)r);
            printf("\n");
        }
        free(out);
        free(latent);
    }
    fclose(f);
    return 0;
}

static void decode_one(const uint8_t *rec, size_t n)
{
    crossl_frame_t fr;
    crossl_frame_status_t st = crossl_frame_decode(rec, n, &fr);
    uint8_t *native, *again;
    uint32_t i;
    int32_t copied, size;
    if (st != CROSSL_FRAME_OK) {
        printf("ERR %d\n", (int)st);
        return;
    }
    /* Round trip in C: copy to native elements, re-encode, expect the same bytes. */
    native = (uint8_t *)xmalloc(fr.latent_size);
    again = (uint8_t *)xmalloc(n);
    copied = crossl_frame_copy_latent(&fr, native, fr.latent_size);
    size = fr.version == CROSSL_FRAME_VERSION_V2
               ? crossl_frame_encode_v2(&fr.header, &fr.v2, native, again, n)
               : crossl_frame_encode(&fr.header, native, again, n);
    if (copied != (int32_t)fr.latent_size || size != (int32_t)n || memcmp(again, rec, n) != 0 ||
        fr.latent != rec + (fr.version == CROSSL_FRAME_VERSION_V2 ? CROSSL_FRAME_HEADER_SIZE_V2
                                                                  : CROSSL_FRAME_HEADER_SIZE)) {
        printf("C_ROUNDTRIP_MISMATCH\n");
    } else {
        printf("OK %u %u %u %u %" PRIu32 " %" PRIu64 " %" PRIu32, (unsigned)fr.header.modality_id,
               (unsigned)fr.header.dtype, (unsigned)fr.header.flags, (unsigned)fr.header.length,
               fr.header.seq, fr.header.timestamp_us, fr.header.fingerprint);
        if (fr.version == CROSSL_FRAME_VERSION_V2) {
            printf(" v2 %" PRIu32 " %u %u", fr.v2.window, (unsigned)fr.v2.epoch,
                   (unsigned)fr.v2.boot);
        }
        for (i = 0; i < fr.header.length; i++) {
            if (fr.header.dtype == CROSSL_FRAME_DTYPE_INT8) {
                printf(" %d", (int)crossl_frame_latent_i8(&fr, i));
            } else if (fr.header.dtype == CROSSL_FRAME_DTYPE_INT16) {
                printf(" %d", (int)crossl_frame_latent_i16(&fr, i));
            } else {
                float v = crossl_frame_latent_f32(&fr, i);
                uint32_t bits;
                memcpy(&bits, &v, 4u);
                printf(" %08" PRIx32, bits);
            }
        }
        printf("\n");
    }
    free(again);
    free(native);
}

static void cobs_one(const uint8_t *rec, size_t n)
{
    size_t cap = CROSSL_FRAME_COBS_MAX_SIZE(n);
    uint8_t *enc = (uint8_t *)xmalloc(cap), *dec = (uint8_t *)xmalloc(n), *inplace;
    int32_t e = crossl_frame_cobs_encode(rec, n, enc, cap), d, back;
    if (e < 1 || memchr(enc, 0, (size_t)e) != NULL) {
        printf("ENCODE_FAILED %d\n", (int)e);
        exit(1);
    }
    back = crossl_frame_cobs_decode(enc, (size_t)e, dec, n);
    if (back != (int32_t)n || memcmp(dec, rec, n) != 0) {
        printf("COBS_ROUNDTRIP_MISMATCH\n");
        exit(1);
    }
    print_hex(enc, (size_t)e);
    d = crossl_frame_cobs_decode(rec, n, dec, n);
    inplace = (uint8_t *)xmalloc(n);
    memcpy(inplace, rec, n);
    if (crossl_frame_cobs_decode(inplace, n, inplace, n) != d ||
        (d > 0 && memcmp(inplace, dec, (size_t)d) != 0)) {
        printf(" INPLACE_MISMATCH\n");
    } else if (d < 0) {
        printf(" ERR:%d\n", (int)d);
    } else {
        printf(" OK:");
        print_hex(dec, (size_t)d);
        printf("\n");
    }
    free(inplace);
    free(dec);
    free(enc);
}

static void crc_one(const uint8_t *rec, size_t n)
{
    uint32_t whole = crossl_frame_crc32_update(0u, rec, n);
    uint32_t split = crossl_frame_crc32_update(crossl_frame_crc32_update(0u, rec, n / 3u),
                                               rec + n / 3u, n - n / 3u);
    printf(whole == split ? "%08" PRIx32 "\n" : "SPLIT_MISMATCH %08" PRIx32 "\n", whole);
}

int main(int argc, char **argv)
{
    static const uint8_t check[] = "123456789";
    if (crossl_frame_crc32_update(0u, check, 9u) != 0xCBF43926u ||
        strcmp(crossl_frame_status_str(CROSSL_FRAME_ERR_BAD_CRC), "BAD_CRC") != 0) {
        printf("SELFTEST_FAILED\n");
        return 1;
    }
    if (argc != 3) {
        fprintf(stderr, "usage: harness encode|decode|cobs|crc FILE\n");
        return 2;
    }
    if (strcmp(argv[1], "encode") == 0) return cmd_encode(argv[2]);
    if (strcmp(argv[1], "decode") == 0) for_each_record(argv[2], decode_one);
    else if (strcmp(argv[1], "cobs") == 0) for_each_record(argv[2], cobs_one);
    else if (strcmp(argv[1], "crc") == 0) for_each_record(argv[2], crc_one);
    else return 2;
    return 0;
}
