#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/uio.h>

#include "common/util.h"
#include "swap/ioeng_impl.h"

/*
 * The fallback when io_uring is unavailable: a FIFO and N workers doing
 * blocking preadv/pwritev; each worker calls done() itself.
 */

#define POOL_MAX_THREADS 256

struct pool {
	struct ioeng base;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct io_req *head, *tail;
	bool stopping;
	unsigned nthreads;
	pthread_t threads[];
};

static void pool_submit(struct ioeng *e, struct io_req **reqs, unsigned n)
{
	struct pool *p = container_of(e, struct pool, base);

	pthread_mutex_lock(&p->lock);
	for (unsigned i = 0; i < n; i++) {
		if (p->tail)
			p->tail->next = reqs[i];
		else
			p->head = reqs[i];
		p->tail = reqs[i];
	}
	if (n == 1)
		pthread_cond_signal(&p->wake);
	else
		pthread_cond_broadcast(&p->wake);
	pthread_mutex_unlock(&p->lock);
}

static void *worker(void *arg)
{
	struct pool *p = arg;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		struct io_req *req;

		while (!p->head && !p->stopping)
			pthread_cond_wait(&p->wake, &p->lock);
		if (!p->head)
			break;
		req = p->head;
		p->head = req->next;
		if (!p->head)
			p->tail = NULL;
		pthread_mutex_unlock(&p->lock);

		ioeng_req_execute(&p->base, req);
		ioeng_req_complete(&p->base, req);

		pthread_mutex_lock(&p->lock);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

/* Stops and joins the first n workers, then frees the pool. */
static void pool_free(struct pool *p, unsigned n)
{
	pthread_mutex_lock(&p->lock);
	p->stopping = true;
	pthread_cond_broadcast(&p->wake);
	pthread_mutex_unlock(&p->lock);
	for (unsigned i = 0; i < n; i++)
		pthread_join(p->threads[i], NULL);
	pthread_cond_destroy(&p->wake);
	pthread_mutex_destroy(&p->lock);
	ioeng_base_fini(&p->base);
	free(p);
}

static void pool_destroy(struct ioeng *e)
{
	struct pool *p = container_of(e, struct pool, base);

	pool_free(p, p->nthreads);
}

static const struct ioeng_ops pool_ops = {
	.name = "threads",
	.kind = IOENG_THREADS,
	.submit = pool_submit,
	.destroy = pool_destroy,
};

int ioeng_threads_create(const struct ioeng_config *cfg, struct ioeng **out)
{
	unsigned n = MIN(MAX(cfg->threads, 1u), POOL_MAX_THREADS);
	struct pool *p;

	p = calloc(1, sizeof(*p) + n * sizeof(pthread_t));
	if (!p)
		return -ENOMEM;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->wake, NULL);
	ioeng_base_init(&p->base, &pool_ops, cfg);
	for (unsigned i = 0; i < n; i++) {
		char name[16];
		int r;

		snprintf(name, sizeof(name), "uvmp-io%u", i);
		r = ioeng_thread_start(&p->threads[i], worker, p, name);
		if (r < 0) {
			pool_free(p, i);
			return r;
		}
	}
	p->nthreads = n;
	*out = &p->base;
	return 0;
}
