/* snapshot.h - hashing and comparing the names that key the snapshot's tables.
 *
 * Every snapshot index (users, rooms, a room's members, a user's blocks) is
 * keyed by a name of at most NAME_MAX_LEN bytes, so it gets a hash made
 * for short keys: a few word loads (overlapping, never outside the key)
 * and multiplications, and a word-wise compare instead of a memcmp call.
 * The broker thread looks up one to three names per check.
 * Both read exactly key[0..len), nothing around it. Each has a plain twin
 * below it (_plain: byte by byte), which tests/unit/test_fast_kernels.c
 * checks gives the same answers; the rule: docs/CONTRIBUTING.md. */
#ifndef MQCHAT_SNAPSHOT_H
#define MQCHAT_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "plugin.h"

#define SNAPSHOT_HASH_K1 0x9E3779B97F4A7C15u
#define SNAPSHOT_HASH_K2 0xBF58476D1CE4E5B9u

static inline uint64_t snapshot__load64(const unsigned char *p)
{
	uint64_t w;
	memcpy(&w, p, 8);
	return w;
}

static inline uint32_t snapshot__load32(const unsigned char *p)
{
	uint32_t w;
	memcpy(&w, p, 4);
	return w;
}

/* A multiplication carries a word's bits upwards only: fold the high half
 * back down after each, so the last bytes of a name (the high bytes of a
 * little-endian word) reach the low bits that pick the bucket. */
static inline uint64_t snapshot__mix(uint64_t h, uint64_t w)
{
	h = (h ^ w) * SNAPSHOT_HASH_K2;
	return h ^ (h >> 32);
}

/* Hash of key[0..len); equal keys of equal length hash equal. */
static inline unsigned snapshot__name_hash(const void *key, size_t len)
{
	const unsigned char *p = key;
	uint64_t h = (uint64_t)len * SNAPSHOT_HASH_K1;

	if(len >= 8){
		const unsigned char *last = p + len - 8;
		for(; p < last; p += 8) h = snapshot__mix(h, snapshot__load64(p));
		h = snapshot__mix(h, snapshot__load64(last));
	}else if(len >= 4){
		h = snapshot__mix(h, ((uint64_t)snapshot__load32(p) << 32) | snapshot__load32(p + len - 4));
	}else if(len > 0){
		h = snapshot__mix(h, (uint64_t)p[0] | (uint64_t)p[len / 2] << 8 | (uint64_t)p[len - 1] << 16);
	}
	h = (h ^ (h >> 29)) * SNAPSHOT_HASH_K1;
	return (unsigned)(h ^ (h >> 32));
}

/* The little-endian word of the n <= 8 bytes at p, byte by byte: what
 * snapshot__load64 and snapshot__load32 read on this machine. */
static inline uint64_t snapshot__load_plain(const unsigned char *p, size_t n)
{
	uint64_t w = 0;
	size_t i;

	for(i=0; i<n; i++) w |= (uint64_t)p[i] << (8 * i);
	return w;
}

/* snapshot__name_hash, every word built byte by byte and every step
 * written out: its plain twin (on a little-endian machine). */
static inline unsigned snapshot__name_hash_plain(const void *key, size_t len)
{
	const unsigned char *p = key;
	uint64_t h = (uint64_t)len * SNAPSHOT_HASH_K1;
	size_t i;

	if(len >= 8){
		for(i=0; i + 8 < len; i += 8) h = snapshot__mix(h, snapshot__load_plain(p + i, 8));
		h = snapshot__mix(h, snapshot__load_plain(p + len - 8, 8));
	}else if(len >= 4){
		h = snapshot__mix(h, snapshot__load_plain(p, 4) << 32 | snapshot__load_plain(p + len - 4, 4));
	}else if(len > 0){
		h = snapshot__mix(h, (uint64_t)p[0] | (uint64_t)p[len / 2] << 8 | (uint64_t)p[len - 1] << 16);
	}
	h = (h ^ (h >> 29)) * SNAPSHOT_HASH_K1;
	return (unsigned)(h ^ (h >> 32));
}

/* True if a[0..len) and b[0..len) are the same bytes. */
static inline bool snapshot__name_eq(const void *a, const void *b, size_t len)
{
	const unsigned char *x = a, *y = b;

	if(len >= 8){
		size_t i;
		for(i=0; i + 8 < len; i += 8){
			if(snapshot__load64(x + i) != snapshot__load64(y + i)) return false;
		}
		return snapshot__load64(x + len - 8) == snapshot__load64(y + len - 8);
	}
	if(len >= 4){
		return snapshot__load32(x) == snapshot__load32(y)
			&& snapshot__load32(x + len - 4) == snapshot__load32(y + len - 4);
	}
	if(len > 0){
		return x[0] == y[0] && x[len / 2] == y[len / 2] && x[len - 1] == y[len - 1];
	}
	return true;
}

/* snapshot__name_eq's plain twin. */
static inline bool snapshot__name_eq_plain(const void *a, const void *b, size_t len)
{
	return len == 0 || memcmp(a, b, len) == 0;
}

/* The item named name[0..len), whose snapshot__name_hash is h, in ix, or
 * NULL. off: where an item keeps its name. Inline: the ACL's membership
 * test runs once per delivery to every room member. */
static inline void *snapshot__index_find_h(const struct snap_index *ix, unsigned h,
		const char *name, size_t len, size_t off)
{
	size_t i;

	if(ix->slots == NULL) return NULL;
	for(i=h & ix->mask; ix->slots[i].item != NULL; i=(i + 1) & ix->mask){
		const struct snap_slot *sl = &ix->slots[i];

		if(sl->hash == h && sl->len == len
				&& snapshot__name_eq((const char *)sl->item + off, name, len)){
			return sl->item;
		}
	}
	return NULL;
}

/* True if u's name is in set (room members, blocked names): its hash is
 * already known. */
static inline bool snapshot__user_in(const struct snap_index *set, const struct snap_user *u)
{
	return snapshot__index_find_h(set, u->hash, u->name, u->len,
			offsetof(struct snap_name, name)) != NULL;
}

#endif
