/*
 * The protocol's datagrams on a SOCK_SEQPACKET socket: a header, the
 * payload of its type, and file descriptors as SCM_RIGHTS.
 */
#ifndef UVMPAGER_CLIENT_WIRE_H
#define UVMPAGER_CLIENT_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "uvmpager/protocol.h"

struct wire_msg {
	struct uvmp_hdr hdr;
	size_t len;                 /* payload bytes */
	int nfds;
	int fds[UVMP_MAX_FDS];
	union {
		unsigned char bytes[UVMP_MAX_MSG - sizeof(struct uvmp_hdr)];
		uint64_t align;
	} payload;
};

/* Sends one message; never raises SIGPIPE. 0 or -errno (-EPIPE: peer gone). */
int wire_send(int sock, uint16_t type, uint32_t seq, int32_t status,
	      const void *payload, size_t len, const int *fds, int nfds);

/*
 * Receives one message (timeout_ms < 0: no limit). The descriptors that
 * came with it are the caller's (CLOEXEC); wire_close_fds closes those
 * it did not take. Returns 0, -ETIMEDOUT, -ECONNRESET when the peer
 * closed, -EPROTO for a malformed message (its fds already closed).
 */
int wire_recv(int sock, struct wire_msg *m, int timeout_ms);

void wire_close_fds(struct wire_msg *m);

#endif
