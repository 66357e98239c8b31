/* One protocol datagram in or out, with its file descriptors. */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "daemon/wire.h"

int wire_send(int fd, uint16_t type, uint32_t seq, int32_t status,
		    const void *payload, size_t plen, const int *fds, unsigned nfds)
{
	char buf[UVMP_MAX_MSG];
	struct uvmp_hdr *h = (struct uvmp_hdr *)buf;
	union {
		char b[CMSG_SPACE(sizeof(int) * UVMP_MAX_FDS)];
		struct cmsghdr align;
	} cbuf;
	struct iovec iov = { .iov_base = buf, .iov_len = sizeof(*h) + plen };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (sizeof(*h) + plen > sizeof(buf) || nfds > UVMP_MAX_FDS)
		return -EMSGSIZE;
	*h = (struct uvmp_hdr){ .len = (uint32_t)(sizeof(*h) + plen), .type = type,
				.version = UVMP_PROTO_VERSION, .seq = seq, .status = status };
	if (plen)
		memcpy(buf + sizeof(*h), payload, plen);
	if (nfds) {
		struct cmsghdr *cm;

		memset(&cbuf, 0, sizeof(cbuf));
		mh.msg_control = cbuf.b;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(cm), fds, sizeof(int) * nfds);
	}
	if (sendmsg(fd, &mh, MSG_NOSIGNAL) < 0)
		return -errno;
	return 0;
}

/* Reads one datagram; fds received are stored in fds[] (-1 past *nfds). */
ssize_t wire_recv(int fd, void *buf, size_t len, int *fds, unsigned *nfds)
{
	union {
		char b[CMSG_SPACE(sizeof(int) * UVMP_MAX_FDS)];
		struct cmsghdr align;
	} cbuf;
	struct iovec iov = { .iov_base = buf, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
			     .msg_control = cbuf.b, .msg_controllen = sizeof(cbuf.b) };
	ssize_t n;

	*nfds = 0;
	n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	if (n < 0)
		return -errno;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		unsigned k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);

		for (unsigned i = 0; i < k; i++) {
			int f;

			memcpy(&f, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
			if (*nfds < UVMP_MAX_FDS)
				fds[(*nfds)++] = f;
			else
				close(f);
		}
	}
	if (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC))
		return -EMSGSIZE;
	return n;
}


ssize_t wire_decode(const void *buf, ssize_t n)
{
	struct uvmp_hdr h;

	if (n < (ssize_t)sizeof(h) || n > UVMP_MAX_MSG)
		return -EPROTO;
	memcpy(&h, buf, sizeof(h));
	if (h.len != (uint32_t)n || h.version != UVMP_PROTO_VERSION)
		return -EPROTO;
	return n - (ssize_t)sizeof(h);
}
