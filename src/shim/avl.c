#include <stddef.h>

#include "shim/avl.h"

static int height(const struct avl_node *n)
{
	return n ? n->height : 0;
}

static void update(struct avl_node *n)
{
	int l = height(n->left), r = height(n->right);

	n->height = 1 + (l > r ? l : r);
}

static void replace_child(struct avl_tree *t, struct avl_node *parent,
			  struct avl_node *old, struct avl_node *new)
{
	if (!parent)
		t->root = new;
	else if (parent->left == old)
		parent->left = new;
	else
		parent->right = new;
	if (new)
		new->parent = parent;
}

static struct avl_node *rotate_left(struct avl_tree *t, struct avl_node *x)
{
	struct avl_node *y = x->right;

	x->right = y->left;
	if (y->left)
		y->left->parent = x;
	replace_child(t, x->parent, x, y);
	y->left = x;
	x->parent = y;
	update(x);
	update(y);
	return y;
}

static struct avl_node *rotate_right(struct avl_tree *t, struct avl_node *x)
{
	struct avl_node *y = x->left;

	x->left = y->right;
	if (y->right)
		y->right->parent = x;
	replace_child(t, x->parent, x, y);
	y->right = x;
	x->parent = y;
	update(x);
	update(y);
	return y;
}

/* Rebalances the subtree at n; returns the node now in n's place. */
static struct avl_node *rebalance(struct avl_tree *t, struct avl_node *n)
{
	int balance = height(n->left) - height(n->right);

	if (balance > 1) {
		if (height(n->left->left) < height(n->left->right))
			rotate_left(t, n->left);
		return rotate_right(t, n);
	}
	if (balance < -1) {
		if (height(n->right->right) < height(n->right->left))
			rotate_right(t, n->right);
		return rotate_left(t, n);
	}
	update(n);
	return n;
}

/* Every ancestor's height may have changed: walk to the root. */
static void retrace(struct avl_tree *t, struct avl_node *n)
{
	while (n)
		n = rebalance(t, n)->parent;
}

void avl_insert(struct avl_tree *t, struct avl_node *n, avl_cmp_fn cmp)
{
	struct avl_node *parent = NULL, **link = &t->root;

	while (*link) {
		parent = *link;
		link = cmp(n, parent) < 0 ? &parent->left : &parent->right;
	}
	n->left = n->right = NULL;
	n->parent = parent;
	n->height = 1;
	*link = n;
	retrace(t, parent);
}

void avl_remove(struct avl_tree *t, struct avl_node *n)
{
	struct avl_node *start;

	if (n->left && n->right) {
		/* the successor (no left child) takes n's place */
		struct avl_node *s = n->right, *sp;

		while (s->left)
			s = s->left;
		sp = s->parent;
		replace_child(t, sp, s, s->right);
		s->left = n->left;
		s->right = n->right;
		if (s->left)
			s->left->parent = s;
		if (s->right)
			s->right->parent = s;
		s->height = n->height;
		replace_child(t, n->parent, n, s);
		start = sp == n ? s : sp;
	} else {
		start = n->parent;
		replace_child(t, n->parent, n, n->left ? n->left : n->right);
	}
	n->left = n->right = n->parent = NULL;
	retrace(t, start);
}

struct avl_node *avl_first(const struct avl_tree *t)
{
	struct avl_node *n = t->root;

	while (n && n->left)
		n = n->left;
	return n;
}

struct avl_node *avl_next(const struct avl_node *n)
{
	if (n->right) {
		n = n->right;
		while (n->left)
			n = n->left;
		return (struct avl_node *)n;
	}
	while (n->parent && n->parent->right == n)
		n = n->parent;
	return n->parent;
}

struct avl_node *avl_prev(const struct avl_node *n)
{
	if (n->left) {
		n = n->left;
		while (n->right)
			n = n->right;
		return (struct avl_node *)n;
	}
	while (n->parent && n->parent->left == n)
		n = n->parent;
	return n->parent;
}

struct avl_node *avl_lower_bound(const struct avl_tree *t, const void *key, avl_key_fn cmp)
{
	struct avl_node *n = t->root, *best = NULL;

	while (n) {
		if (cmp(key, n) <= 0) {
			best = n;
			n = n->left;
		} else {
			n = n->right;
		}
	}
	return best;
}

struct avl_node *avl_floor(const struct avl_tree *t, const void *key, avl_key_fn cmp)
{
	struct avl_node *n = t->root, *best = NULL;

	while (n) {
		if (cmp(key, n) >= 0) {
			best = n;
			n = n->right;
		} else {
			n = n->left;
		}
	}
	return best;
}

static int check(const struct avl_node *n, const struct avl_node *parent, bool *ok)
{
	int l, r;

	if (!n)
		return 0;
	if (n->parent != parent)
		*ok = false;
	l = check(n->left, n, ok);
	r = check(n->right, n, ok);
	if (l - r > 1 || r - l > 1 || n->height != 1 + (l > r ? l : r))
		*ok = false;
	return n->height;
}

bool avl_valid(const struct avl_tree *t, avl_cmp_fn cmp)
{
	const struct avl_node *prev = NULL;
	bool ok = true;

	check(t->root, NULL, &ok);
	for (const struct avl_node *n = avl_first(t); n; n = avl_next(n)) {
		if (prev && cmp(prev, n) > 0)
			ok = false;
		prev = n;
	}
	return ok;
}
