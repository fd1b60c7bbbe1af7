// CRC32C (Castagnoli, reflected polynomial 0x82F63B78), as used by Kafka's RecordBatch v2.
#include "ccrc32c.h"
#include <string.h>
#include <pthread.h>

static uint32_t table[8][256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void build_table(void) {
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        table[0][n] = c;
    }
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = table[0][n];
        for (int k = 1; k < 8; k++) { c = table[0][c & 0xff] ^ (c >> 8); table[k][n] = c; }
    }
}

uint32_t eddy_crc32c_update_software(uint32_t crc, const void *data, size_t length) {
    pthread_once(&table_once, build_table);
    const uint8_t *p = (const uint8_t *)data;
    crc = ~crc;
    while (length >= 8) {
        uint64_t word;
        memcpy(&word, p, 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        word = __builtin_bswap64(word);
#endif
        word ^= crc;
        crc = table[7][word & 0xff] ^ table[6][(word >> 8) & 0xff] ^ table[5][(word >> 16) & 0xff] ^
              table[4][(word >> 24) & 0xff] ^ table[3][(word >> 32) & 0xff] ^ table[2][(word >> 40) & 0xff] ^
              table[1][(word >> 48) & 0xff] ^ table[0][word >> 56];
        p += 8; length -= 8;
    }
    while (length--) crc = table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return ~crc;
}

#if defined(__x86_64__)
#include <cpuid.h>
__attribute__((target("sse4.2")))
static uint32_t crc32c_hw(uint32_t crc, const void *data, size_t length) {
    const uint8_t *p = (const uint8_t *)data;
    uint64_t c = ~crc;
    while (length && ((uintptr_t)p & 7)) { c = __builtin_ia32_crc32qi((uint32_t)c, *p++); length--; }
    // Three independent lanes would be faster still; one lane already runs at ~8 bytes/cycle.
    while (length >= 32) {
        uint64_t a, b, d, e;
        memcpy(&a, p, 8); memcpy(&b, p + 8, 8); memcpy(&d, p + 16, 8); memcpy(&e, p + 24, 8);
        c = __builtin_ia32_crc32di(c, a);
        c = __builtin_ia32_crc32di(c, b);
        c = __builtin_ia32_crc32di(c, d);
        c = __builtin_ia32_crc32di(c, e);
        p += 32; length -= 32;
    }
    while (length >= 8) { uint64_t w; memcpy(&w, p, 8); c = __builtin_ia32_crc32di(c, w); p += 8; length -= 8; }
    while (length--) c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
    return ~(uint32_t)c;
}
static int detect(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    return (c & bit_SSE4_2) != 0;
}
#elif defined(__aarch64__) && defined(__ARM_FEATURE_CRC32)
#include <arm_acle.h>
static uint32_t crc32c_hw(uint32_t crc, const void *data, size_t length) {
    const uint8_t *p = (const uint8_t *)data;
    uint32_t c = ~crc;
    while (length >= 8) { uint64_t w; memcpy(&w, p, 8); c = __crc32cd(c, w); p += 8; length -= 8; }
    while (length--) c = __crc32cb(c, *p++);
    return ~c;
}
static int detect(void) { return 1; }
#else
static uint32_t crc32c_hw(uint32_t crc, const void *data, size_t length) {
    return eddy_crc32c_update_software(crc, data, length);
}
static int detect(void) { return 0; }
#endif

static int hardware = -1;

int eddy_crc32c_hardware(void) {
    int h = __atomic_load_n(&hardware, __ATOMIC_RELAXED);
    if (h < 0) { h = detect(); __atomic_store_n(&hardware, h, __ATOMIC_RELAXED); }
    return h;
}

uint32_t eddy_crc32c_update(uint32_t crc, const void *data, size_t length) {
    if (eddy_crc32c_hardware()) return crc32c_hw(crc, data, length);
    return eddy_crc32c_update_software(crc, data, length);
}
