/* The fuzzing engine stub (stub_engine.c): what fuzz_requests.c drives. */
#ifndef UVMPAGER_FUZZ_STUB_ENGINE_H
#define UVMPAGER_FUZZ_STUB_ENGINE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct client;
struct uobj;

/* The engine client whose request is being handled (NULL: the harness). */
extern struct client *fuzz_actor;

/* The clients' userfaultfds belong to another process: their registrations never show. */
extern bool stub_foreign_uffd;

/* As vma_uffd_registered (src/daemon/uffdowner.h) sees it: an own object of pid there. */
int stub_vma_registered(pid_t pid, uint64_t addr);
struct client *stub_client_new(pid_t pid);
struct uobj *stub_object_new(struct client *c, uintptr_t addr, size_t len);
/* Frees every client and object still there. */
void stub_engine_reset(void);

#endif
