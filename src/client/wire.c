#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client/wire.h"

int wire_send(int sock, uint16_t type, uint32_t seq, int32_t status,
	      const void *payload, size_t len, const int *fds, int nfds)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * UVMP_MAX_FDS)];
		struct cmsghdr align;
	} ctl;
	struct uvmp_hdr hdr = {
		.len = (uint32_t)(sizeof(hdr) + len),
		.type = type,
		.version = UVMP_PROTO_VERSION,
		.seq = seq,
		.status = status,
	};
	struct iovec iov[2] = {
		{ .iov_base = &hdr, .iov_len = sizeof(hdr) },
		{ .iov_base = (void *)payload, .iov_len = len },
	};
	struct msghdr msg = { .msg_iov = iov, .msg_iovlen = len ? 2 : 1 };
	ssize_t n;

	if (sizeof(hdr) + len > UVMP_MAX_MSG || nfds < 0 || nfds > UVMP_MAX_FDS)
		return -EINVAL;
	if (nfds) {
		struct cmsghdr *cm;

		memset(&ctl, 0, sizeof(ctl));
		msg.msg_control = ctl.buf;
		msg.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
		cm = CMSG_FIRSTHDR(&msg);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
		memcpy(CMSG_DATA(cm), fds, sizeof(int) * (size_t)nfds);
	}
	do
		n = sendmsg(sock, &msg, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == ECONNRESET || errno == ENOTCONN ? -EPIPE : -errno;
	return n == (ssize_t)hdr.len ? 0 : -EPROTO;
}

void wire_close_fds(struct wire_msg *m)
{
	for (int i = 0; i < m->nfds; i++)
		if (m->fds[i] >= 0)
			close(m->fds[i]);
	m->nfds = 0;
}

/* Collects the SCM_RIGHTS descriptors; false if there were more than fit. */
static bool take_fds(struct msghdr *msg, struct wire_msg *m)
{
	bool fit = true;

	for (struct cmsghdr *cm = CMSG_FIRSTHDR(msg); cm; cm = CMSG_NXTHDR(msg, cm)) {
		size_t n;
		int fd;

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
			if (m->nfds < UVMP_MAX_FDS) {
				m->fds[m->nfds++] = fd;
			} else {
				close(fd);
				fit = false;
			}
		}
	}
	return fit;
}

int wire_recv(int sock, struct wire_msg *m, int timeout_ms)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * UVMP_MAX_FDS)];
		struct cmsghdr align;
	} ctl;
	struct iovec iov[2] = {
		{ .iov_base = &m->hdr, .iov_len = sizeof(m->hdr) },
		{ .iov_base = m->payload.bytes, .iov_len = sizeof(m->payload.bytes) },
	};
	struct msghdr msg = {
		.msg_iov = iov, .msg_iovlen = 2,
		.msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf),
	};
	ssize_t n;

	m->nfds = 0;
	m->len = 0;
	if (timeout_ms >= 0) {
		struct pollfd p = { .fd = sock, .events = POLLIN };
		int r;

		do
			r = poll(&p, 1, timeout_ms);
		while (r < 0 && errno == EINTR);
		if (r < 0)
			return -errno;
		if (r == 0)
			return -ETIMEDOUT;
	}
	do
		n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == ENOTCONN ? -ECONNRESET : -errno;
	if (n == 0)
		return -ECONNRESET;
	if (!take_fds(&msg, m) || (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) ||
	    (size_t)n < sizeof(m->hdr) || m->hdr.len != (uint32_t)n ||
	    m->hdr.version != UVMP_PROTO_VERSION) {
		wire_close_fds(m);
		return -EPROTO;
	}
	m->len = (size_t)n - sizeof(m->hdr);
	return 0;
}
