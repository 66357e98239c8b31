#include <pthread.h>
#include <string.h>

#include "swap/csum.h"

#define CRC32C_POLY 0x82F63B78u

/* Slicing-by-8: eight tables, 8 KiB, built once on first use. */
static uint32_t sw_table[8][256];
static pthread_once_t sw_once = PTHREAD_ONCE_INIT;

static void sw_init(void)
{
	for (unsigned i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (CRC32C_POLY & (0u - (c & 1)));
		sw_table[0][i] = c;
	}
	for (unsigned i = 0; i < 256; i++)
		for (unsigned t = 1; t < 8; t++)
			sw_table[t][i] = (sw_table[t - 1][i] >> 8) ^
				sw_table[0][sw_table[t - 1][i] & 0xff];
}

uint32_t crc32c_sw(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	pthread_once(&sw_once, sw_init);
	crc = ~crc;
	while (len && ((uintptr_t)p & 7)) {
		crc = (crc >> 8) ^ sw_table[0][(crc ^ *p++) & 0xff];
		len--;
	}
	while (len >= 8) {
		uint64_t v;

		/* Little-endian load: the tables assume the first byte is lowest. */
		memcpy(&v, p, 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
		v = __builtin_bswap64(v);
#endif
		v ^= crc;
		crc = sw_table[7][v & 0xff] ^ sw_table[6][(v >> 8) & 0xff] ^
			sw_table[5][(v >> 16) & 0xff] ^ sw_table[4][(v >> 24) & 0xff] ^
			sw_table[3][(v >> 32) & 0xff] ^ sw_table[2][(v >> 40) & 0xff] ^
			sw_table[1][(v >> 48) & 0xff] ^ sw_table[0][v >> 56];
		p += 8;
		len -= 8;
	}
	while (len--)
		crc = (crc >> 8) ^ sw_table[0][(crc ^ *p++) & 0xff];
	return ~crc;
}

#if defined(__x86_64__)

__attribute__((target("sse4.2")))
static uint32_t hw_crc(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint64_t c = ~crc;

	while (len && ((uintptr_t)p & 7)) {
		c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
		len--;
	}
	while (len >= 8) {
		uint64_t v;

		memcpy(&v, p, 8);
		c = __builtin_ia32_crc32di(c, v);
		p += 8;
		len -= 8;
	}
	while (len--)
		c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
	return ~(uint32_t)c;
}

bool crc32c_hw_available(void)
{
	__builtin_cpu_init();
	return __builtin_cpu_supports("sse4.2");
}

#else

static uint32_t hw_crc(uint32_t crc, const void *buf, size_t len)
{
	return crc32c_sw(crc, buf, len);
}

bool crc32c_hw_available(void)
{
	return false;
}

#endif

uint32_t crc32c_hw(uint32_t crc, const void *buf, size_t len)
{
	if (!crc32c_hw_available())
		return crc32c_sw(crc, buf, len);
	return hw_crc(crc, buf, len);
}

/* 0 = not probed yet, 1 = software, 2 = hardware; races only redo the probe. */
static int impl;

uint32_t crc32c(uint32_t crc, const void *buf, size_t len)
{
	int i = __atomic_load_n(&impl, __ATOMIC_RELAXED);

	if (!i) {
		i = crc32c_hw_available() ? 2 : 1;
		__atomic_store_n(&impl, i, __ATOMIC_RELAXED);
	}
	return i == 2 ? hw_crc(crc, buf, len) : crc32c_sw(crc, buf, len);
}
