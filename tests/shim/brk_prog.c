#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
/*
 * A heap of its own with sbrk(2), as old allocators and some runtimes
 * keep one: 64 MiB in 1 MiB steps, filled and checked, then given back.
 * The shim cannot manage a brk heap and must say so, once.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define MiB (1UL << 20)

int main(void)
{
	char *base = sbrk(0), *p;
	uint64_t sum = 0;
	size_t bad = 0;

	for (int i = 0; i < 64; i++) {
		p = sbrk(MiB);
		if (p == (void *)-1) {
			perror("sbrk");
			return 2;
		}
		for (size_t off = 0; off < MiB; off += 64)
			p[off] = (char)(i * 7 + off / 64);
	}
	for (int i = 0; i < 64; i++)
		for (size_t off = 0; off < MiB; off += 64) {
			char v = base[i * MiB + off];

			bad += v != (char)(i * 7 + off / 64);
			sum = sum * 31 + (unsigned char)v;
		}
	if (brk(base) != 0) {
		perror("brk");
		return 2;
	}
	printf("64 MiB of brk heap, sum %016llx, %zu bad\n", (unsigned long long)sum, bad);
	return bad ? 1 : 0;
}
