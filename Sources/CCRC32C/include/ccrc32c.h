#ifndef CCRC32C_H
#define CCRC32C_H
#include <stddef.h>
#include <stdint.h>

/// Continues a CRC32C (Castagnoli) over `length` bytes. Pass 0 as `crc` to start.
/// Uses the CPU's crc32 instruction (SSE4.2 on x86_64, CRC on arm64) when present,
/// a slicing-by-8 table otherwise. Thread-safe; the table is built once.
uint32_t eddy_crc32c_update(uint32_t crc, const void *data, size_t length);

/// 1 when the hardware path is in use, 0 for the table fallback.
int eddy_crc32c_hardware(void);

/// Software-only path (for tests that compare the two).
uint32_t eddy_crc32c_update_software(uint32_t crc, const void *data, size_t length);
#endif
