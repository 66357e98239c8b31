/* Private to the file-backed object types (vnode, device). */
#ifndef UVMPAGER_VNODE_H
#define UVMPAGER_VNODE_H

#include <stddef.h>

struct uobj;

/* Read [start, start + n) from the backing file; the tail past EOF stays zero. */
int vnode_get(struct uobj *o, size_t start, size_t n);

#endif
