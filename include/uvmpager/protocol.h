/*
 * The uvmpagerd control protocol (version 1).
 *
 * A client process opens two SOCK_SEQPACKET connections to the daemon's
 * socket (default /run/uvmpagerd/control.sock):
 *
 *   control  request/reply, driven by the program's threads (one request
 *            in flight at a time: the client serialises);
 *   agent    the daemon's liveness: it holds the connection and sends
 *            nothing (EOF = the daemon died: the agent fails closed).
 *            Type 64 was the daemon's fence request to the agent; the
 *            daemon fences through the memfds now, and the agent answers
 *            any request with -EOPNOTSUPP.
 *
 * Every message is one datagram: a header, a fixed payload for its type,
 * and file descriptors as SCM_RIGHTS ancillary data. All integers are
 * native-endian (both ends are on one machine). The daemon identifies the
 * peer with SO_PEERCRED; a malformed message gets a reply with status
 * -EPROTO (or -EINVAL) and the connection is closed.
 */
#ifndef UVMPAGER_PROTOCOL_H
#define UVMPAGER_PROTOCOL_H

#include <stdint.h>

#define UVMP_PROTO_VERSION 1
#define UVMP_MAX_MSG 4096           /* largest datagram either way */
#define UVMP_MAX_FDS 8              /* most fds in one message */
#define UVMP_DEFAULT_SOCKET "/run/uvmpagerd/control.sock"

enum uvmp_type {
	/* client -> daemon, on the control connection */
	UVMP_HELLO = 1,         /* first message; reply: struct uvmp_hello_reply [+ fd] */
	UVMP_UFFD = 2,          /* fd: the client's userfaultfd, UFFDIO_API not yet done;
				   reply fds: the page-in journal (struct uvmp_journal),
				   the pin table (struct uvmp_pin) */
	UVMP_MAP = 3,           /* register a region; fds: memfd [, backing file] */
	UVMP_UNMAP = 4,         /* the client unmaps [addr, addr + len) */
	UVMP_REMAP = 5,         /* a region moved or changed size (mremap) */
	UVMP_RELEASE = 6,       /* [addr, addr + len) reads as zeros from now on (-EXDEV: see uvmpager_release) */
	UVMP_FLUSH = 7,         /* write the object's dirty pages back, wait */
	UVMP_SET_BUDGET = 8,    /* object (id != 0) or whole-client budget */
	UVMP_OBJ_STAT = 9,      /* reply: struct uvmp_obj_stat */
	UVMP_FORK_PREPARE = 10, /* clone every object for a child; reply fds: clones' memfds */
	UVMP_FORK_DONE = 11,    /* parent side after fork: forget (or keep) the clones */
	UVMP_ADOPT = 12,        /* child: fetch the clones named by a fork token */
	UVMP_ADOPT_DONE = 13,   /* child: clones mapped; register them */
	UVMP_LOCK = 14,         /* mlock/munlock of a range, or mlockall/munlockall (struct uvmp_lock) */

	/* client -> daemon, first message on the agent connection */
	UVMP_AGENT = 32,

	/* the reply bit: a reply carries its request's type | UVMP_REPLY */
	UVMP_REPLY = 0x8000,
};

struct uvmp_hdr {
	uint32_t len;           /* bytes, header included */
	uint16_t type;
	uint16_t version;       /* UVMP_PROTO_VERSION */
	uint32_t seq;           /* chosen by the requester, echoed in the reply */
	int32_t status;         /* replies: 0 or -errno */
};

/* UVMP_HELLO */
#define UVMP_HELLO_WANT_UFFD_DEV 0x1   /* send me a /dev/userfaultfd descriptor */
struct uvmp_hello {
	uint32_t pid;           /* must match SO_PEERCRED */
	uint32_t flags;
	uint64_t budget;        /* bytes resident for this process; 0: daemon default */
};

struct uvmp_hello_reply {
	uint64_t client_id;
	uint64_t agent_token;   /* proves the agent connection belongs to this client */
	uint64_t budget;        /* what the daemon granted (capped by its limit) */
	uint64_t min_size;      /* smallest region worth managing */
	uint32_t uffd_features; /* reserved */
	uint32_t flags;         /* 1: an fd (/dev/userfaultfd) comes with this reply */
};

/*
 * The page-in journal (reply to UVMP_UFFD): a sealed memfd of
 * UVMP_JOURNAL_ENTRIES entries that the daemon writes and the client maps
 * read-only. The daemon reads a swapped page back straight into the
 * client's page cache, so for a while the page cache holds a page whose
 * data has not landed, or has not been checked. Before such a read starts
 * the daemon fills an entry with the client-view range; once the pages
 * are verified (or dropped as unreadable) it clears it. If the daemon
 * dies, the agent serves the userfaultfd itself and must not map a page
 * an entry covers: it poisons it (SIGBUS) instead of handing out zeros.
 * len is written last when an entry is filled and first when it is
 * cleared (0: free).
 */
#define UVMP_JOURNAL_ENTRIES 512
struct uvmp_journal {
	uint64_t addr;          /* client address, page-aligned */
	uint64_t len;           /* bytes; 0: entry free */
};

/*
 * The pin table (second fd of the UVMP_UFFD reply): a sealed memfd of
 * UVMP_PIN_ENTRIES entries that the client writes and the daemon reads.
 * The kernel may hold a page pinned across a fence (an O_DIRECT read in
 * flight into it), and the fence takes the page out of the memfd (it
 * comes back as a copy): the read would fill the old page. So before such
 * a syscall the client claims a free entry (len 0 -> UVMP_PIN_CLAIMED,
 * compare-and-swap), writes addr, then len (sequentially consistent),
 * then reads the fencing word after the entries; while it is nonzero,
 * it waits. It clears len once the syscall returned. The daemon sets the
 * fencing word (sequentially consistent), reads the table, fences all but
 * the pages an entry covers, and clears the word. One of the two sees the
 * other: the daemon the entry, and keeps the pages; or the client the
 * word, and its syscall comes after the fence, when a pin has to fault
 * to the daemon first. An entry still UVMP_PIN_CLAIMED has not read the
 * word yet.
 */
#define UVMP_PIN_ENTRIES 256
#define UVMP_PIN_CLAIMED UINT64_MAX
struct uvmp_pin {
	uint64_t addr;          /* client address (any alignment) */
	uint64_t len;           /* bytes; 0: entry free */
};
/*
 * The entries, the fencing word, then the moved word: the daemon keeps it
 * nonzero while it serves memory of the client's that the client did not
 * map itself, parts of its regions the program moved by a raw mremap
 * (objects of their own since). A client that pins or locks only the
 * regions it knows must then pin and lock wherever the range is.
 */
#define UVMP_PIN_TABLE_SIZE (UVMP_PIN_ENTRIES * sizeof(struct uvmp_pin) + 2 * sizeof(uint64_t))
#define UVMP_PIN_FENCING(table) ((uint64_t *)((struct uvmp_pin *)(table) + UVMP_PIN_ENTRIES))
#define UVMP_PIN_MOVED(table) (UVMP_PIN_FENCING(table) + 1)

/* UVMP_AGENT: the second connection */
struct uvmp_agent {
	uint64_t client_id;
	uint64_t agent_token;
};

/* UVMP_MAP */
enum uvmp_obj_type {
	UVMP_OBJ_ANON = 0,      /* aobj: swap-backed */
	UVMP_OBJ_FILE = 1,      /* vnode: second fd is the file, written back */
	UVMP_OBJ_DEVICE = 2,    /* device: second fd, read-only */
};

struct uvmp_map {
	uint64_t addr;          /* where the memfd is mapped MAP_SHARED in the client */
	uint64_t len;
	uint64_t offset;        /* reserved: 0 */
	uint64_t budget;        /* bytes; 0: only the client's and the global budget */
	uint32_t type;          /* enum uvmp_obj_type */
	uint32_t prot;          /* PROT_* of the client's mapping */
};

struct uvmp_map_reply {
	uint64_t object_id;
};

/* UVMP_UNMAP, UVMP_RELEASE */
struct uvmp_range {
	uint64_t addr;
	uint64_t len;
};

/*
 * UVMP_LOCK: the program locks (UVMP_LOCK_ON) or unlocks [addr, addr +
 * len), or all its managed memory, now and later (UVMP_LOCK_ALL: addr and
 * len are 0). Locked pages stay in memory and are never written to swap.
 * The shim sends a lock before the program's mlock and an unlock after
 * its munlock, so no page of the range is written out in between.
 */
#define UVMP_LOCK_ON  1u
#define UVMP_LOCK_ALL 2u
struct uvmp_lock {
	uint64_t addr;
	uint64_t len;
	uint32_t flags;
	uint32_t pad;           /* 0 */
};

/* UVMP_REMAP */
struct uvmp_remap {
	uint64_t old_addr, old_len;
	uint64_t new_addr, new_len;
};

/* UVMP_FLUSH, UVMP_OBJ_STAT */
struct uvmp_obj {
	uint64_t object_id;
};

/* UVMP_SET_BUDGET */
struct uvmp_budget {
	uint64_t object_id;     /* 0: the client as a whole */
	uint64_t bytes;
};

struct uvmp_obj_stat {
	uint64_t object_id;
	uint64_t size;
	uint64_t resident_bytes, dirty_bytes, swapped_bytes;
	uint64_t swapins, swapouts, faults;
	uint64_t budget;
};

/*
 * fork: the parent's prepare handler asks the daemon to clone every
 * object of the client (resident pages copied, swap slots shared); the
 * child connects anew and adopts the clones: it fetches their memfds in
 * batches (UVMP_ADOPT), maps each MAP_FIXED over the region it replaces,
 * then says UVMP_ADOPT_DONE, and the daemon registers the ranges with the
 * child's userfaultfd. Clones nobody adopts within 30 s are destroyed.
 */
struct uvmp_fork_reply {        /* UVMP_FORK_PREPARE reply */
	uint64_t token;
	uint32_t nregions;
	uint32_t reserved;
};

struct uvmp_fork_done {         /* UVMP_FORK_DONE, parent side */
	uint64_t token;
	int32_t child_pid;      /* <= 0: fork failed, drop the clones */
	uint32_t reserved;
};

struct uvmp_adopt {             /* UVMP_ADOPT, child side */
	uint64_t token;
	uint32_t start;         /* first region index wanted */
	uint32_t reserved;
};

struct uvmp_region {
	uint64_t addr, len;
	uint64_t object_id;
	uint32_t type;          /* enum uvmp_obj_type */
	uint32_t prot;
};

struct uvmp_adopt_reply {       /* fds: one memfd per region, same order */
	uint32_t total;         /* regions under this token */
	uint32_t n;             /* regions in this reply (<= UVMP_MAX_FDS) */
	struct uvmp_region regions[UVMP_MAX_FDS];
};

struct uvmp_adopt_done {        /* UVMP_ADOPT_DONE: all regions mapped */
	uint64_t token;
};

#endif
