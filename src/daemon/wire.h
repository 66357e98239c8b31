/* Datagrams of the control protocol (include/uvmpager/protocol.h). */
#ifndef UVMPAGERD_WIRE_H
#define UVMPAGERD_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "uvmpager/protocol.h"

/* A header, then payload; fds go as SCM_RIGHTS. 0 or -errno. */
int wire_send(int fd, uint16_t type, uint32_t seq, int32_t status,
	      const void *payload, size_t plen, const int *fds, unsigned nfds);
/*
 * One datagram without blocking: its length, or -errno (-EMSGSIZE when it
 * or its fds were truncated). Received fds land in fds[] (*nfds of them,
 * close-on-exec); extra ones are closed.
 */
ssize_t wire_recv(int fd, void *buf, size_t len, int *fds, unsigned *nfds);

/*
 * The header check every request passes before its handler: n bytes
 * received in buf hold a whole header whose len is n and whose version is
 * ours. Returns the payload's length, or -EPROTO. Pure (no state), so the
 * fuzzer (tests/fuzz/fuzz_wire.c) calls it as the daemon does.
 */
ssize_t wire_decode(const void *buf, ssize_t n);

#endif
