/*
 * CRC32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of the
 * swap file header and of every page written to swap.
 */
#ifndef UVMPAGER_SWAP_CSUM_H
#define UVMPAGER_SWAP_CSUM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Convention: pass 0 to start and the previous result to continue; the
 * pre- and post-inversion happen inside, so
 *   crc32c(crc32c(0, a, la), b, lb) == crc32c(0, a||b, la + lb)
 * and crc32c(0, "123456789", 9) == 0xE3069283 (the standard check value).
 * Uses the SSE4.2 crc32 instruction when the CPU has it.
 */
uint32_t crc32c(uint32_t crc, const void *buf, size_t len);

/* The two implementations behind crc32c(), for tests and benchmarks. */
uint32_t crc32c_sw(uint32_t crc, const void *buf, size_t len);
/* Returns false when the CPU (or the build target) has no crc32 instruction. */
bool crc32c_hw_available(void);
/* Only valid when crc32c_hw_available(); falls back to software otherwise. */
uint32_t crc32c_hw(uint32_t crc, const void *buf, size_t len);

#endif
