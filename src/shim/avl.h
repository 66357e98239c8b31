/*
 * An intrusive AVL tree with parent pointers: the arena's address and
 * size indexes. The tree never allocates; nodes live in the caller's
 * structs (container_of). Lookups compare a key with a node.
 */
#ifndef UVMPAGER_SHIM_AVL_H
#define UVMPAGER_SHIM_AVL_H

#include <stdbool.h>

struct avl_node {
	struct avl_node *left, *right, *parent;
	int height;
};

struct avl_tree {
	struct avl_node *root;
};

/* <0, 0, >0 as a sorts before, with, after b. */
typedef int (*avl_cmp_fn)(const struct avl_node *a, const struct avl_node *b);
typedef int (*avl_key_fn)(const void *key, const struct avl_node *n);

void avl_insert(struct avl_tree *t, struct avl_node *n, avl_cmp_fn cmp);
void avl_remove(struct avl_tree *t, struct avl_node *n);

struct avl_node *avl_first(const struct avl_tree *t);
struct avl_node *avl_next(const struct avl_node *n);
struct avl_node *avl_prev(const struct avl_node *n);

/* The first node not before key, or NULL. */
struct avl_node *avl_lower_bound(const struct avl_tree *t, const void *key, avl_key_fn cmp);
/* The last node not after key, or NULL. */
struct avl_node *avl_floor(const struct avl_tree *t, const void *key, avl_key_fn cmp);

/* Checks heights, balance, parent links and order; for tests. */
bool avl_valid(const struct avl_tree *t, avl_cmp_fn cmp);

#endif
