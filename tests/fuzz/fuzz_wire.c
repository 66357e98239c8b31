/*
 * libFuzzer target: the control protocol's receive path as the daemon runs
 * it. The input is sent as one datagram over a SOCK_SEQPACKET pair (with
 * 0..3 pipe fds attached, picked by the first byte, so the SCM_RIGHTS path
 * is exercised), read back with wire_recv and checked with wire_decode.
 * Invariants: no crash, every received fd is valid and closed by us, and
 * wire_decode accepts exactly the datagrams whose header matches.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "daemon/wire.h"

static int sp[2] = { -1, -1 };
static int pipefd[2] = { -1, -1 };

static void setup(void)
{
	if (sp[0] >= 0)
		return;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0 ||
	    pipe2(pipefd, O_CLOEXEC) < 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	union {
		char b[CMSG_SPACE(sizeof(int) * 3)];
		struct cmsghdr align;
	} cbuf;
	char buf[UVMP_MAX_MSG];
	int fds[UVMP_MAX_FDS], sendfds[3];
	unsigned nfds, want = 0;
	struct iovec iov;
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n, pl;

	setup();
	if (size && size <= UVMP_MAX_MSG + 64) {
		want = data[0] & 3;
		if (want == 3)
			want = 0;
	}
	/* the datagram itself: everything (an empty one hangs up in the daemon) */
	if (!size || size > UVMP_MAX_MSG + 64)
		return 0;
	iov = (struct iovec){ .iov_base = (void *)data, .iov_len = size };
	if (want) {
		struct cmsghdr *cm;

		for (unsigned i = 0; i < want; i++)
			sendfds[i] = pipefd[i & 1];
		memset(&cbuf, 0, sizeof(cbuf));
		mh.msg_control = cbuf.b;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * want);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * want);
		memcpy(CMSG_DATA(cm), sendfds, sizeof(int) * want);
	}
	if (sendmsg(sp[0], &mh, MSG_NOSIGNAL) < 0)
		return 0;
	n = wire_recv(sp[1], buf, sizeof(buf), fds, &nfds);
	if (nfds > UVMP_MAX_FDS)
		abort();
	for (unsigned i = 0; i < nfds; i++) {
		if (fcntl(fds[i], F_GETFD) < 0)
			abort();
		close(fds[i]);
	}
	if (n == -EMSGSIZE) {
		if (size <= UVMP_MAX_MSG)
			abort();        /* truncated although it fit */
		return 0;
	}
	if (n < 0)
		abort();
	if ((size_t)n != size || nfds != want)
		abort();
	pl = wire_decode(buf, n);
	if (pl >= 0) {
		const struct uvmp_hdr *h = (const void *)buf;

		if (h->len != size || h->version != UVMP_PROTO_VERSION ||
		    (size_t)pl + sizeof(*h) != size)
			abort();
	} else if (pl != -EPROTO) {
		abort();
	}
	return 0;
}
