/*
 * The connection: the handshake (control socket, userfaultfd, agent
 * socket), request/reply matching, and teardown.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "client/client_impl.h"
#include "client/rawsys.h"
#include "fault/uffd_compat.h"

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static int open_socket(const char *path, int *out)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	int fd, r;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = -errno;
		goto fail;
	}
	/*
	 * Whoever listens there gets this process's memory and page faults;
	 * a daemon run by some other unprivileged user could read it all.
	 */
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0) {
		r = -errno;
		goto fail;
	}
	if (cred.uid != 0 && cred.uid != geteuid()) {
		r = -EPERM;
		goto fail;
	}
	*out = fd;
	return 0;
fail:
	close(fd);
	return r;
}

int client_call_locked(struct uvmpager *c, uint16_t type, const void *req, size_t reqlen,
		       const int *fds, int nfds, struct wire_msg *reply, int timeout_ms)
{
	struct wire_msg local, *m = reply ? reply : &local;
	uint32_t seq;
	int r;

	m->nfds = 0;
	if (getpid() != c->pid)
		return -ECHILD;
	if (atomic_load(&c->ctl_dead))
		return -ENOTCONN;
	seq = ++c->seq;
	r = wire_send(c->ctl, type, seq, 0, req, reqlen, fds, nfds);
	if (r < 0)
		goto broken;
	for (;;) {
		r = wire_recv(c->ctl, m, timeout_ms);
		if (r < 0)
			goto broken;
		if (m->hdr.seq == seq && m->hdr.type == (type | UVMP_REPLY))
			break;
		wire_close_fds(m);
		r = -EPROTO;
		goto broken;
	}
	if (m->hdr.status < 0 || !reply)
		wire_close_fds(m);
	return m->hdr.status > 0 ? 0 : m->hdr.status;
broken:
	/* Replies can no longer be matched with requests: the connection is over. */
	atomic_store(&c->ctl_dead, true);
	return r == -ETIMEDOUT || r == -EPROTO ? r : -ENOTCONN;
}

int client_call(struct uvmpager *c, uint16_t type, const void *req, size_t reqlen,
		const int *fds, int nfds, struct wire_msg *reply)
{
	int r;

	if (!c)
		return -EINVAL;
	pthread_mutex_lock(&c->lock);
	r = client_call_locked(c, type, req, reqlen, fds, nfds, reply, -1);
	pthread_mutex_unlock(&c->lock);
	return r;
}

/*
 * Ours if userfaultfd(2) gave us one; else made from the /dev/userfaultfd
 * descriptor the daemon sent, which must not outlive this call: it would
 * let this process make more userfaultfds with the daemon's blessing.
 */
static int take_uffd(struct uvmpager *c, const struct uvmp_hello_reply *hr,
		     struct wire_msg *m, int syscall_err)
{
	int dev, fd, r;

	if (c->uffd >= 0) {
		wire_close_fds(m);
		return 0;
	}
	if (!(hr->flags & 1) || m->nfds < 1) {
		wire_close_fds(m);
		return syscall_err;
	}
	dev = m->fds[0];
	m->fds[0] = -1;
	wire_close_fds(m);
	fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
	r = fd < 0 ? -errno : 0;
	close(dev);
	if (r < 0)
		return r;
	c->uffd = fd;
	c->uffd_from_device = true;
	return 0;
}

static int open_agent(struct uvmpager *c, const struct uvmp_hello_reply *hr)
{
	struct uvmp_agent ag = { .client_id = hr->client_id, .agent_token = hr->agent_token };
	struct wire_msg m;
	int r;

	r = open_socket(c->socket_path, &c->agent_sock);
	if (r < 0)
		return r;
	r = wire_send(c->agent_sock, UVMP_AGENT, 1, 0, &ag, sizeof(ag), NULL, 0);
	if (r < 0)
		return r;
	/* The daemon answers once it has tied this connection to the client. */
	r = wire_recv(c->agent_sock, &m, CLIENT_HANDSHAKE_TIMEOUT_MS);
	if (r < 0)
		return r;
	wire_close_fds(&m);
	if (m.hdr.type != (UVMP_AGENT | UVMP_REPLY))
		return -EPROTO;
	return m.hdr.status < 0 ? m.hdr.status : 0;
}

/*
 * The daemon's page-in journal (protocol.h), read by the agent only once
 * the daemon is gone, and the pin table this process writes around
 * O_DIRECT reads (uvmpager_pin_begin): kept as descriptors until
 * client_map_tables, since a forked child must not map anything where
 * the kernel chooses before its clones are in place (a moved part's
 * hole is free in the child, MADV_DONTFORK, and would take the tables).
 */
static int take_tables(struct uvmpager *c, struct wire_msg *m)
{
	struct stat st, pst;
	int r = 0;

	if (m->nfds != 2 || fstat(m->fds[0], &st) < 0 ||
	    (size_t)st.st_size < UVMP_JOURNAL_ENTRIES * sizeof(struct uvmp_journal) ||
	    fstat(m->fds[1], &pst) < 0 || (size_t)pst.st_size < UVMP_PIN_TABLE_SIZE) {
		r = -EPROTO;
		goto out;
	}
	c->table_fds[0] = m->fds[0];
	c->table_fds[1] = m->fds[1];
	m->fds[0] = m->fds[1] = -1;
out:
	wire_close_fds(m);
	return r;
}

/* Mapped with the raw syscall: under the shim, mmap is the shim's. */
int client_map_tables(struct uvmpager *c)
{
	size_t jlen = UVMP_JOURNAL_ENTRIES * sizeof(struct uvmp_journal);
	size_t plen = UVMP_PIN_TABLE_SIZE;
	void *p, *q;

	if (c->table_fds[0] < 0 || c->table_fds[1] < 0)
		return -EBADF;
	p = raw_mmap(NULL, jlen, PROT_READ, MAP_SHARED, c->table_fds[0], 0);
	if (p == MAP_FAILED)
		return -errno;
	q = raw_mmap(NULL, plen, PROT_READ | PROT_WRITE, MAP_SHARED, c->table_fds[1], 0);
	if (q == MAP_FAILED) {
		int r = -errno;

		raw_munmap(p, jlen);
		return r;
	}
	c->journal = p;
	c->pintab = q;
	close_fd(&c->table_fds[0]);
	close_fd(&c->table_fds[1]);
	return 0;
}

static int handshake(struct uvmpager *c)
{
	struct uvmp_hello hello = { .pid = (uint32_t)c->pid, .budget = c->budget_asked };
	struct uvmp_hello_reply hr = { 0 };
	struct wire_msg m;
	int r, syscall_err = 0;

	r = open_socket(c->socket_path, &c->ctl);
	if (r < 0)
		return r;
	/* No UFFDIO_API here: the daemon does it, with features it may use. */
	c->uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (c->uffd < 0) {
		syscall_err = -errno;
		hello.flags |= UVMP_HELLO_WANT_UFFD_DEV;
	}
	pthread_mutex_lock(&c->lock);
	r = client_call_locked(c, UVMP_HELLO, &hello, sizeof(hello), NULL, 0, &m,
			       CLIENT_HANDSHAKE_TIMEOUT_MS);
	if (r == 0 && m.len < sizeof(hr)) {
		wire_close_fds(&m);
		r = -EPROTO;
	}
	if (r == 0) {
		memcpy(&hr, m.payload.bytes, sizeof(hr));
		r = take_uffd(c, &hr, &m, syscall_err);
	}
	if (r == 0)
		r = client_call_locked(c, UVMP_UFFD, NULL, 0, &c->uffd, 1, &m,
				       CLIENT_HANDSHAKE_TIMEOUT_MS);
	if (r == 0)
		r = take_tables(c, &m);
	pthread_mutex_unlock(&c->lock);
	if (r < 0)
		return r;
	c->client_id = hr.client_id;
	c->budget = hr.budget;
	c->min_size = hr.min_size;
	r = open_agent(c, &hr);
	if (r < 0)
		return r;
	c->stop_efd = eventfd(0, EFD_CLOEXEC);
	if (c->stop_efd < 0)
		return -errno;
	return 0;
}

int client_open(const char *socket_path, uint64_t budget, bool start_agent,
		struct uvmpager **out)
{
	struct uvmpager *c;
	const char *path = socket_path;
	int r;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!path || !*path)
		path = secure_getenv("UVMPAGER_SOCKET");
	if (!path || !*path)
		path = UVMP_DEFAULT_SOCKET;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->ctl = c->agent_sock = c->uffd = c->stop_efd = -1;
	c->table_fds[0] = c->table_fds[1] = -1;
	pthread_mutex_init(&c->lock, NULL);
	pthread_mutex_init(&c->regions_lock, NULL);
	c->pid = getpid();
	c->budget_asked = budget;
	c->socket_path = strdup(path);
	if (!c->socket_path) {
		r = -ENOMEM;
		goto fail;
	}
	r = handshake(c);
	if (r == 0 && start_agent)
		r = client_map_tables(c);
	if (r == 0 && start_agent)
		r = agent_start(c);
	if (r < 0)
		goto fail;
	*out = c;
	return 0;
fail:
	client_free(c);
	return r;
}

void client_free(struct uvmpager *c)
{
	if (!c)
		return;
	/* In a child the agent thread was not inherited; there is nobody to join. */
	if (c->pid == getpid())
		agent_stop(c);
	close_fd(&c->ctl);
	close_fd(&c->agent_sock);
	close_fd(&c->uffd);
	close_fd(&c->stop_efd);
	close_fd(&c->table_fds[0]);
	close_fd(&c->table_fds[1]);
	if (c->journal)
		raw_munmap((void *)c->journal, UVMP_JOURNAL_ENTRIES * sizeof(*c->journal));
	if (c->pintab)
		raw_munmap(c->pintab, UVMP_PIN_TABLE_SIZE);
	regions_clear(c);
	free(c->socket_path);
	/* no mutex_destroy: in a child they may be held by threads that are not there */
	free(c);
}

int uvmpager_connect(const char *socket_path, uint64_t budget, struct uvmpager **out)
{
	return client_open(socket_path, budget, true, out);
}

void uvmpager_disconnect(struct uvmpager *c)
{
	bool keep;

	if (!c)
		return;
	pthread_mutex_lock(&c->regions_lock);
	keep = c->nregions && atomic_load(&c->agent_dead) && c->pid == getpid();
	pthread_mutex_unlock(&c->regions_lock);
	if (keep) {
		/*
		 * The daemon died with regions still registered: closing the
		 * uffd would let them read zeros. Leave the fail-closed
		 * server running for the rest of the process's life.
		 */
		close_fd(&c->ctl);
		close_fd(&c->agent_sock);
		return;
	}
	client_free(c);
}

bool uvmpager_alive(struct uvmpager *c)
{
	return c && !atomic_load(&c->ctl_dead) && !atomic_load(&c->agent_dead);
}

void uvmpager_get_info(struct uvmpager *c, struct uvmpager_info *info)
{
	memset(info, 0, sizeof(*info));
	if (!c)
		return;
	info->client_id = c->client_id;
	info->budget = c->budget;
	info->min_size = c->min_size;
	info->uffd_from_device = c->uffd_from_device;
	info->alive = uvmpager_alive(c);
	info->fc_continued = atomic_load(&c->fc_continued);
	info->fc_poisoned = atomic_load(&c->fc_poisoned);
}
