#include <errno.h>
#include <stdlib.h>

#include "common/util.h"
#include "swap/slots.h"

/*
 * Layout: `used` has a bit per slot with refcount > 0 (plus slot 0 and the
 * tail past nslots, permanently set so no scan ever returns them); `bad`
 * has a bit per bad slot. A slot is allocatable when both bits are clear.
 * `full` has a bit per 64-slot word with no allocatable slot, so scans of
 * a mostly-full swap skip 4096 slots per summary word.
 *
 * Reference counts are 1 for every used slot except those shared by fork
 * clones, whose extra references live in an open-addressing hash table.
 */

struct refent {
	uint64_t slot;          /* 0 = empty bucket (slot 0 is never shared) */
	uint32_t extra;         /* references beyond the first */
};

struct slots {
	uint64_t nslots;
	size_t nwords;
	size_t nsum;
	uint64_t *used;
	uint64_t *bad;
	uint64_t *full;
	uint64_t nused;
	uint64_t nbad;
	uint64_t nfree;
	/* next-fit: where the previous run ended */
	uint64_t cursor;
	/*
	 * No free run is longer than this (SLOTS_MAX_RUN = unknown). It lets a
	 * fragmented or exhausted allocator answer without scanning everything
	 * on every call: a failed full scan sets it to the longest run seen,
	 * frees raise it to the longest run they could have merged.
	 */
	unsigned maxrun;
	struct refent *refs;
	size_t ref_cap;         /* power of two, or 0 */
	size_t ref_n;
	unsigned ref_bits;
};

static inline uint64_t busy_word(const struct slots *s, size_t w)
{
	return s->used[w] | s->bad[w];
}

static inline void update_full(struct slots *s, size_t w)
{
	if (busy_word(s, w) == ~0ULL)
		bitmap_set(s->full, w);
	else
		bitmap_clear(s->full, w);
}

static inline uint64_t range_mask(unsigned lo, unsigned hi)
{
	uint64_t m = hi == 64 ? ~0ULL : (1ULL << hi) - 1;

	return m & (~0ULL << lo);
}

/* ---- reference table ---- */

static inline size_t ref_home(const struct slots *s, uint64_t slot)
{
	return (size_t)((slot * 0x9E3779B97F4A7C15ULL) >> (64 - s->ref_bits));
}

static struct refent *ref_find(const struct slots *s, uint64_t slot)
{
	size_t mask = s->ref_cap - 1;

	if (!s->ref_n)
		return NULL;
	for (size_t i = ref_home(s, slot);; i = (i + 1) & mask) {
		if (s->refs[i].slot == slot)
			return &s->refs[i];
		if (!s->refs[i].slot)
			return NULL;
	}
}

static int ref_resize(struct slots *s, size_t cap)
{
	struct refent *old = s->refs;
	size_t old_cap = s->ref_cap;
	struct refent *n = calloc(cap, sizeof(*n));

	if (!n)
		return -ENOMEM;
	s->refs = n;
	s->ref_cap = cap;
	s->ref_bits = (unsigned)__builtin_ctzll(cap);
	for (size_t i = 0; i < old_cap; i++) {
		size_t j;

		if (!old[i].slot)
			continue;
		for (j = ref_home(s, old[i].slot); n[j].slot; j = (j + 1) & (cap - 1))
			;
		n[j] = old[i];
	}
	free(old);
	return 0;
}

static int ref_add(struct slots *s, uint64_t slot)
{
	struct refent *e = ref_find(s, slot);
	size_t i;

	if (e) {
		if (e->extra == UINT32_MAX - 1)
			return -EOVERFLOW;
		e->extra++;
		return 0;
	}
	/* Load stays under one half: linear probing degrades fast above that. */
	if ((s->ref_n + 1) * 2 > s->ref_cap) {
		int r = ref_resize(s, s->ref_cap ? s->ref_cap * 2 : 64);

		if (r < 0)
			return r;
	}
	for (i = ref_home(s, slot); s->refs[i].slot; i = (i + 1) & (s->ref_cap - 1))
		;
	s->refs[i].slot = slot;
	s->refs[i].extra = 1;
	s->ref_n++;
	return 0;
}

/* Backward-shift deletion keeps probe chains intact without tombstones. */
static void ref_delete(struct slots *s, struct refent *e)
{
	size_t mask = s->ref_cap - 1;
	size_t i = (size_t)(e - s->refs);

	for (size_t j = (i + 1) & mask; s->refs[j].slot; j = (j + 1) & mask) {
		size_t h = ref_home(s, s->refs[j].slot);

		if (((j - h) & mask) >= ((j - i) & mask)) {
			s->refs[i] = s->refs[j];
			i = j;
		}
	}
	s->refs[i].slot = 0;
	s->refs[i].extra = 0;
	s->ref_n--;
	/* Give memory back after a fork-heavy phase; failure is harmless. */
	if (!s->ref_n) {
		free(s->refs);
		s->refs = NULL;
		s->ref_cap = 0;
	} else if (s->ref_cap > 64 && s->ref_n * 8 < s->ref_cap) {
		ref_resize(s, s->ref_cap / 2);
	}
}

/* ---- allocator ---- */

int slots_create(uint64_t nslots, struct slots **out)
{
	struct slots *s;

	/* 2^48 slots = 1 EiB; beyond that the arithmetic below could wrap. */
	if (nslots < 2 || nslots > (1ULL << 48))
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->nslots = nslots;
	s->nwords = DIV_ROUND_UP(nslots, 64);
	s->nsum = DIV_ROUND_UP(s->nwords, 64);
	s->used = calloc(s->nwords, sizeof(uint64_t));
	s->bad = calloc(s->nwords, sizeof(uint64_t));
	s->full = calloc(s->nsum, sizeof(uint64_t));
	if (!s->used || !s->bad || !s->full) {
		slots_destroy(s);
		return -ENOMEM;
	}
	bitmap_set(s->used, 0);
	if (nslots % 64)
		s->used[s->nwords - 1] |= ~0ULL << (nslots % 64);
	update_full(s, 0);
	update_full(s, s->nwords - 1);
	/* Summary bits past the last word read as full, ending scans there. */
	if (s->nwords % 64)
		s->full[s->nsum - 1] |= ~0ULL << (s->nwords % 64);
	s->nfree = nslots - 1;
	s->cursor = 1;
	s->maxrun = SLOTS_MAX_RUN;
	*out = s;
	return 0;
}

void slots_destroy(struct slots *s)
{
	if (!s)
		return;
	free(s->used);
	free(s->bad);
	free(s->full);
	free(s->refs);
	free(s);
}

struct scan {
	unsigned target;        /* run length that ends the search */
	unsigned best;          /* longest run seen, < target */
	uint64_t best_start;
	uint64_t run;           /* current run, may continue into the next word */
	uint64_t run_start;
};

/*
 * First fit over words [w, end_w), starting at bit `bit` of word w. Runs
 * may straddle words; words marked full are skipped a summary word at a
 * time.
 */
static bool scan_range(const struct slots *s, struct scan *sc, size_t w,
		       unsigned bit, size_t end_w, uint64_t *start)
{
	sc->run = 0;
	while (w < end_w) {
		uint64_t open = ~s->full[w / 64] >> (w % 64);
		uint64_t fr;
		unsigned pos = 0;

		if (!open) {
			sc->run = 0;
			w = (w / 64 + 1) * 64;
			bit = 0;
			continue;
		}
		if (!(open & 1)) {
			sc->run = 0;
			w += (size_t)__builtin_ctzll(open);
			bit = 0;
			continue;
		}
		fr = ~busy_word(s, w) & (~0ULL << bit);
		bit = 0;
		while (pos < 64) {
			uint64_t rest = fr >> pos;
			unsigned z, ones;

			if (!rest) {
				sc->run = 0;
				break;
			}
			z = (unsigned)__builtin_ctzll(rest);
			if (z) {
				sc->run = 0;
				pos += z;
				rest >>= z;
			}
			if (!sc->run)
				sc->run_start = (uint64_t)w * 64 + pos;
			ones = ~rest ? (unsigned)__builtin_ctzll(~rest) : 64;
			sc->run += ones;
			pos += ones;
			if (sc->run >= sc->target) {
				*start = sc->run_start;
				return true;
			}
			if (sc->run > sc->best) {
				sc->best = (unsigned)sc->run;
				sc->best_start = sc->run_start;
			}
		}
		w++;
	}
	return false;
}

static void mark_used(struct slots *s, uint64_t start, unsigned n)
{
	uint64_t end = start + n;

	while (start < end) {
		size_t w = start / 64;
		unsigned lo = start % 64;
		unsigned hi = (unsigned)MIN(64, end - (uint64_t)w * 64);

		s->used[w] |= range_mask(lo, hi);
		update_full(s, w);
		start = (uint64_t)w * 64 + hi;
	}
}

int slots_alloc(struct slots *s, unsigned want, unsigned min, uint64_t *start)
{
	struct scan sc = { 0 };
	size_t cw = s->cursor / 64;
	uint64_t at = 0;
	unsigned n;
	bool found;

	if (!min || min > want || want > SLOTS_MAX_RUN)
		return -EINVAL;
	if (s->nfree < min || s->maxrun < min)
		return -ENOSPC;
	sc.target = (unsigned)MIN(MIN(want, s->maxrun), s->nfree);
	/*
	 * From the cursor to the end, then from the start to just past the
	 * cursor word, so a run crossing the cursor is seen whole.
	 */
	found = scan_range(s, &sc, cw, s->cursor % 64, s->nwords, &at) ||
		scan_range(s, &sc, 0, 0, MIN(s->nwords, cw + SLOTS_MAX_RUN / 64 + 1), &at);
	if (found) {
		n = sc.target;
	} else {
		/* The whole map was scanned: best is now the exact longest run. */
		s->maxrun = sc.best;
		if (sc.best < min)
			return -ENOSPC;
		n = sc.best;
		at = sc.best_start;
	}
	mark_used(s, at, n);
	s->nused += n;
	s->nfree -= n;
	s->cursor = at + n < s->nslots ? at + n : 1;
	*start = at;
	return (int)n;
}

/* Allocatable slots immediately below pos, up to cap. */
static unsigned free_left(const struct slots *s, uint64_t pos, unsigned cap)
{
	unsigned n = 0;

	while (n < cap && pos > 0) {
		uint64_t b = pos - 1;
		unsigned bit = b % 64;
		uint64_t x = busy_word(s, b / 64) << (63 - bit);

		if (x) {
			n += (unsigned)__builtin_clzll(x);
			break;
		}
		n += bit + 1;
		pos -= bit + 1;
	}
	return MIN(n, cap);
}

/* Allocatable slots from pos upwards, up to cap. */
static unsigned free_right(const struct slots *s, uint64_t pos, unsigned cap)
{
	unsigned n = 0;

	while (n < cap && pos < (uint64_t)s->nwords * 64) {
		unsigned bit = pos % 64;
		uint64_t x = busy_word(s, pos / 64) >> bit;

		if (x) {
			n += (unsigned)__builtin_ctzll(x);
			break;
		}
		n += 64 - bit;
		pos += 64 - bit;
	}
	return MIN(n, cap);
}

void slots_free(struct slots *s, uint64_t start, unsigned n)
{
	bool freed = false;

	if (start >= s->nslots)
		return;
	n = (unsigned)MIN((uint64_t)n, s->nslots - start);
	for (uint64_t i = start; i < start + n; i++) {
		struct refent *e;

		if (i == 0 || !bitmap_test(s->used, i))
			continue;
		e = ref_find(s, i);
		if (e) {
			if (!--e->extra)
				ref_delete(s, e);
			continue;
		}
		bitmap_clear(s->used, i);
		s->nused--;
		if (bitmap_test(s->bad, i))
			continue;
		s->nfree++;
		bitmap_clear(s->full, i / 64);
		freed = true;
	}
	if (freed && s->maxrun < SLOTS_MAX_RUN) {
		unsigned span = free_left(s, start, SLOTS_MAX_RUN) + n +
			free_right(s, start + n, SLOTS_MAX_RUN);

		s->maxrun = MAX(s->maxrun, MIN(span, SLOTS_MAX_RUN));
	}
}

int slots_ref(struct slots *s, uint64_t slot)
{
	if (slot == 0 || slot >= s->nslots || !bitmap_test(s->used, slot))
		return -EINVAL;
	return ref_add(s, slot);
}

unsigned slots_refcount(const struct slots *s, uint64_t slot)
{
	const struct refent *e;

	if (slot == 0 || slot >= s->nslots || !bitmap_test(s->used, slot))
		return 0;
	e = ref_find(s, slot);
	return e ? e->extra + 1 : 1;
}

void slots_mark_bad(struct slots *s, uint64_t slot)
{
	if (slot == 0 || slot >= s->nslots || bitmap_test(s->bad, slot))
		return;
	bitmap_set(s->bad, slot);
	s->nbad++;
	if (!bitmap_test(s->used, slot))
		s->nfree--;
	update_full(s, slot / 64);
}

bool slots_is_bad(const struct slots *s, uint64_t slot)
{
	return slot < s->nslots && bitmap_test(s->bad, slot);
}

unsigned slots_state(const struct slots *s, uint64_t slot)
{
	if (slot == 0 || slot >= s->nslots)
		return 0;
	return (bitmap_test(s->used, slot) ? SLOT_USED : 0) |
	       (bitmap_test(s->bad, slot) ? SLOT_BAD : 0);
}

uint64_t slots_total(const struct slots *s)
{
	return s->nslots - 1;
}

uint64_t slots_used(const struct slots *s)
{
	return s->nused;
}

uint64_t slots_bad(const struct slots *s)
{
	return s->nbad;
}

uint64_t slots_free_count(const struct slots *s)
{
	return s->nfree;
}

size_t slots_memory(const struct slots *s)
{
	return sizeof(*s) + 2 * s->nwords * sizeof(uint64_t) +
		s->nsum * sizeof(uint64_t) + s->ref_cap * sizeof(struct refent);
}
