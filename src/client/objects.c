/* Requests about objects, and the convenience constructors. */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "client/client_impl.h"
#include "client/rawsys.h"
#include "common/util.h"

static bool page_aligned(const void *addr, size_t len)
{
	return !(((uintptr_t)addr | len) & (PAGE_SIZE - 1));
}

static int map_region(struct uvmpager *c, int memfd, void *addr, size_t len,
		      enum uvmp_obj_type type, int prot, int backing_fd, uint64_t budget,
		      bool owned, uint64_t *object_id)
{
	struct uvmp_map req = {
		.addr = (uintptr_t)addr, .len = len, .budget = budget,
		.type = (uint32_t)type, .prot = (uint32_t)prot,
	};
	struct uvmp_map_reply rep;
	struct region reg;
	int fds[2] = { memfd, backing_fd };
	struct wire_msg m;
	int r;

	if (!c || memfd < 0 || !len || !page_aligned(addr, len))
		return -EINVAL;
	if (type != UVMP_OBJ_ANON && type != UVMP_OBJ_FILE && type != UVMP_OBJ_DEVICE)
		return -EINVAL;
	if ((type == UVMP_OBJ_ANON) != (backing_fd < 0))
		return -EINVAL;
	r = client_call(c, UVMP_MAP, &req, sizeof(req), fds, backing_fd >= 0 ? 2 : 1, &m);
	if (r < 0)
		return r;
	wire_close_fds(&m);
	if (m.len < sizeof(rep)) {
		/* registered, but under an id we cannot name: undo it */
		uvmpager_unmap(c, addr, len);
		return -EPROTO;
	}
	memcpy(&rep, m.payload.bytes, sizeof(rep));
	reg = (struct region){
		.addr = (uintptr_t)addr, .len = len, .id = rep.object_id,
		.type = (uint32_t)type, .prot = (uint32_t)prot, .owned = owned,
	};
	r = regions_add(c, &reg);
	if (r < 0) {
		struct uvmp_range range = { .addr = (uintptr_t)addr, .len = len };

		client_call(c, UVMP_UNMAP, &range, sizeof(range), NULL, 0, NULL);
		return r;
	}
	if (object_id)
		*object_id = rep.object_id;
	return 0;
}

int uvmpager_map_fd(struct uvmpager *c, int memfd, void *addr, size_t len,
		    enum uvmp_obj_type type, int prot, int backing_fd,
		    uint64_t budget, uint64_t *object_id)
{
	return map_region(c, memfd, addr, len, type, prot, backing_fd, budget, false, object_id);
}

static int range_call(struct uvmpager *c, uint16_t type, const void *addr, size_t len)
{
	struct uvmp_range range = { .addr = (uintptr_t)addr, .len = len };

	if (!c || !len || !page_aligned(addr, len))
		return -EINVAL;
	return client_call(c, type, &range, sizeof(range), NULL, 0, NULL);
}

int uvmpager_unmap(struct uvmpager *c, void *addr, size_t len)
{
	int r = range_call(c, UVMP_UNMAP, addr, len);

	/* With the daemon gone there is nothing left to tell it. */
	if (r == 0 || r == -ENOTCONN)
		regions_remove(c, (uintptr_t)addr, len);
	return r;
}

int uvmpager_release(struct uvmpager *c, void *addr, size_t len)
{
	return range_call(c, UVMP_RELEASE, addr, len);
}

int uvmpager_lock(struct uvmpager *c, const void *addr, size_t len, bool on, bool all)
{
	struct uvmp_lock l = {
		.addr = all ? 0 : (uintptr_t)addr,
		.len = all ? 0 : len,
		.flags = (on ? UVMP_LOCK_ON : 0) | (all ? UVMP_LOCK_ALL : 0),
	};

	if (!c)
		return -EINVAL;
	return client_call(c, UVMP_LOCK, &l, sizeof(l), NULL, 0, NULL);
}

int uvmpager_remap(struct uvmpager *c, void *old_addr, size_t old_len,
		   void *new_addr, size_t new_len)
{
	struct uvmp_remap req = {
		.old_addr = (uintptr_t)old_addr, .old_len = old_len,
		.new_addr = (uintptr_t)new_addr, .new_len = new_len,
	};
	int r;

	if (!c || !page_aligned(old_addr, old_len) || !page_aligned(new_addr, new_len) ||
	    !old_len || !new_len)
		return -EINVAL;
	r = client_call(c, UVMP_REMAP, &req, sizeof(req), NULL, 0, NULL);
	if (r == 0)
		regions_move(c, (uintptr_t)old_addr, (uintptr_t)new_addr, new_len);
	return r;
}

int uvmpager_flush(struct uvmpager *c, uint64_t object_id)
{
	struct uvmp_obj req = { .object_id = object_id };

	return client_call(c, UVMP_FLUSH, &req, sizeof(req), NULL, 0, NULL);
}

int uvmpager_set_budget(struct uvmpager *c, uint64_t object_id, uint64_t bytes)
{
	struct uvmp_budget req = { .object_id = object_id, .bytes = bytes };

	return client_call(c, UVMP_SET_BUDGET, &req, sizeof(req), NULL, 0, NULL);
}

int uvmpager_stat(struct uvmpager *c, uint64_t object_id, struct uvmp_obj_stat *st)
{
	struct uvmp_obj req = { .object_id = object_id };
	struct wire_msg m;
	int r;

	if (!st)
		return -EINVAL;
	r = client_call(c, UVMP_OBJ_STAT, &req, sizeof(req), NULL, 0, &m);
	if (r < 0)
		return r;
	wire_close_fds(&m);
	memset(st, 0, sizeof(*st));
	/* a shorter reply from an older daemon leaves the newer fields zero */
	memcpy(st, m.payload.bytes, MIN(m.len, sizeof(*st)));
	return m.len >= offsetof(struct uvmp_obj_stat, resident_bytes) ? 0 : -EPROTO;
}

int uvmpager_object_at(struct uvmpager *c, const void *addr, uint64_t *object_id)
{
	struct region r;

	if (!c)
		return -EINVAL;
	if (!regions_find(c, (uintptr_t)addr, &r))
		return -ENOENT;
	if (object_id)
		*object_id = r.id;
	return 0;
}

/*
 * A memfd of len mapped MAP_SHARED, ready to be registered: at *addr if
 * it is set (over the caller's own reservation), anywhere otherwise.
 */
static int memfd_region(size_t len, int prot, int *memfd, void **addr)
{
	void *p;
	int fd, r;

	/* the daemon seals it against shrinking (F_SEAL_SHRINK) before it takes it */
	fd = memfd_create("uvmpager", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)len) < 0) {
		r = -errno;
		goto fail;
	}
	p = raw_mmap(*addr, len, prot, MAP_SHARED | MAP_NORESERVE | (*addr ? MAP_FIXED : 0), fd, 0);
	if (p == MAP_FAILED) {
		r = -errno;
		goto fail;
	}
	/*
	 * A huge page would make a 4 KiB touch populate 2 MiB the daemon
	 * cannot evict page by page; kernels without THP refuse the advice.
	 */
	raw_madvise(p, len, MADV_NOHUGEPAGE);
	/* a forked child gets a copy through the fork protocol, never this mapping */
	raw_madvise(p, len, MADV_DONTFORK);
	*memfd = fd;
	*addr = p;
	return 0;
fail:
	close(fd);
	return r;
}

/* want: where to map (the caller's reservation, given back as it was on failure), or NULL. */
static int create(struct uvmpager *c, size_t len, uint64_t budget, enum uvmp_obj_type type,
		  int backing_fd, void *want, void **addr, uint64_t *object_id)
{
	int prot = type == UVMP_OBJ_DEVICE ? PROT_READ : PROT_READ | PROT_WRITE;
	int memfd = -1, r;
	void *p = want;

	if (!c || !addr || !len || len > SIZE_MAX - PAGE_SIZE || ((uintptr_t)want & (PAGE_SIZE - 1)))
		return -EINVAL;
	len = ALIGN_UP(len, PAGE_SIZE);
	r = memfd_region(len, prot, &memfd, &p);
	if (r < 0)
		goto fail;
	r = map_region(c, memfd, p, len, type, prot, backing_fd, budget, true, object_id);
	/* the daemon has its own reference, the mapping keeps ours alive */
	close(memfd);
	if (r < 0)
		goto fail;
	*addr = p;
	return 0;

fail:
	/* a failed MAP_FIXED may have unmapped the reservation already: make it again */
	if (want)
		raw_mmap(want, len, PROT_NONE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
	else if (memfd >= 0)
		raw_munmap(p, len);
	return r;
}

int uvmpager_anon_create(struct uvmpager *c, size_t len, uint64_t budget,
			 void **addr, uint64_t *object_id)
{
	return create(c, len, budget, UVMP_OBJ_ANON, -1, NULL, addr, object_id);
}

int uvmpager_anon_create_at(struct uvmpager *c, void *addr, size_t len, uint64_t budget,
			    uint64_t *object_id)
{
	void *p;

	if (!addr)
		return -EINVAL;
	return create(c, len, budget, UVMP_OBJ_ANON, -1, addr, &p, object_id);
}

int uvmpager_file_map(struct uvmpager *c, int fd, size_t len, uint64_t budget,
		      bool read_only, void **addr, uint64_t *object_id)
{
	if (fd < 0)
		return -EINVAL;
	return create(c, len, budget, read_only ? UVMP_OBJ_DEVICE : UVMP_OBJ_FILE, fd,
		      NULL, addr, object_id);
}

static int destroy(struct uvmpager *c, void *addr)
{
	struct region r;
	int err;

	if (!c)
		return -EINVAL;
	if (!regions_find(c, (uintptr_t)addr, &r) || r.addr != (uintptr_t)addr || !r.owned)
		return -ENOENT;
	err = uvmpager_unmap(c, addr, r.len);
	if (err == -ECHILD)
		return err;
	/* Whatever the daemon said, the region is the caller's no longer. */
	regions_remove(c, r.addr, r.len);
	raw_munmap(addr, r.len);
	return err == -ENOTCONN ? 0 : err;
}

int uvmpager_anon_destroy(struct uvmpager *c, void *addr)
{
	return destroy(c, addr);
}

int uvmpager_file_unmap(struct uvmpager *c, void *addr)
{
	return destroy(c, addr);
}
