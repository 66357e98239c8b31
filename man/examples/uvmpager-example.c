/* 64 MiB of managed memory under a 16 MiB budget, written and read back. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uvmpager/uvmpager.h>

int main(void)
{
    const size_t len = 64UL << 20, page = 4096;
    struct uvmp_obj_stat st;
    struct uvmpager *c;
    uint64_t id;
    size_t wrong = 0;
    char *p;
    int r;

    r = uvmpager_connect(NULL, 16UL << 20, &c);
    if (r < 0) {
        fprintf(stderr, "no uvmpagerd: %s\n", strerror(-r));
        return 1;
    }
    r = uvmpager_anon_create(c, len, 0, (void **)&p, &id);
    if (r < 0) {
        fprintf(stderr, "anon_create: %s\n", strerror(-r));
        uvmpager_disconnect(c);
        return 1;
    }
    for (size_t off = 0; off < len; off += page)
        memcpy(p + off, &off, sizeof(off));     /* most of it goes to swap */
    for (size_t off = 0; off < len; off += page) {
        size_t v;

        memcpy(&v, p + off, sizeof(v));         /* and comes back */
        wrong += v != off;
    }
    if (uvmpager_stat(c, id, &st) == 0)
        printf("resident %llu MiB, swapped %llu MiB, pages wrong %zu\n",
               (unsigned long long)st.resident_bytes >> 20,
               (unsigned long long)st.swapped_bytes >> 20, wrong);
    uvmpager_anon_destroy(c, p);
    uvmpager_disconnect(c);
    return wrong ? 1 : 0;
}
