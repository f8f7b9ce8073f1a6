/* snapshot.c - the user store in memory: users, rooms, members, blocks,
 * and the names of deleted accounts (for presence).
 *
 * A snapshot is built whole (by the loader process, see loader.c) and never
 * changed once the broker thread sees it. Users, rooms, members and blocked
 * names are found through flat open-addressing indexes (struct snap_index)
 * hashed by snapshot.h. Every node, string and index array comes from one
 * arena, so building is a bump of a pointer and there is nothing to free
 * one by one. The arena is either malloc'd chunks
 * (snapshot__new, for tests and tools) or one fixed region the caller owns
 * (snapshot__new_in: a slot of the memory shared with the loader process,
 * so the snapshot's pointers mean the same in both processes). */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "plugin.h"
#include "snapshot.h"

#define ARENA_CHUNK (1024 * 1024)


struct arena_chunk {
	struct arena_chunk *next;
	size_t used, size;
	max_align_t data[];
};

#define ALIGN_UP(n) (((n) + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t))

/* size bytes, zeroed, aligned for any node type; NULL when out of memory
 * (or, for a region, when it is full: s->full says so). */
static void *arena_alloc(struct snapshot *s, size_t size)
{
	struct arena_chunk *c = s->chunks;
	void *p;

	size = ALIGN_UP(size);
	if(s->region != NULL){
		/* The region was zero when the snapshot was made in it. */
		if(s->region_size - s->region_used < size){
			s->full = true;
			return NULL;
		}
		p = s->region + s->region_used;
		s->region_used += size;
		s->bytes += size;
		return p;
	}
	if(c == NULL || c->size - c->used < size){
		size_t csize = size > ARENA_CHUNK ? size : ARENA_CHUNK;
		/* calloc: a chunk this big comes from fresh zeroed pages, so the
		 * nodes need no memset of their own. */
		c = calloc(1, sizeof(*c) + csize);
		if(c == NULL) return NULL;
		c->used = 0;
		c->size = csize;
		c->next = s->chunks;
		s->chunks = c;
	}
	p = (char *)c->data + c->used;
	c->used += size;
	s->bytes += size;
	return p;
}

struct snapshot *snapshot__new(void)
{
	return calloc(1, sizeof(struct snapshot));
}

struct snapshot *snapshot__new_in(void *region, size_t size)
{
	struct snapshot *s = region;
	const size_t head = ALIGN_UP(sizeof(*s));

	if(region == NULL || size < head) return NULL;
	s->region = region;
	s->region_size = size;
	s->region_used = head;
	return s;
}

void snapshot__free(struct snapshot *s)
{
	struct arena_chunk *c, *next;

	/* A snapshot in a region is the region's owner's to wipe. */
	if(s == NULL || s->region != NULL) return;
	/* Nodes and index arrays all live in the chunks. */
	for(c=s->chunks; c; c=next){
		next = c->next;
		free(c);
	}
	free(s);
}

static void *index_find(const struct snap_index *ix, const char *name, size_t len, size_t off)
{
	if(ix->slots == NULL) return NULL;
	return snapshot__index_find_h(ix, snapshot__name_hash(name, len), name, len, off);
}

/* The first empty slot of ix's probe sequence for hash h. */
static struct snap_slot *free_slot(const struct snap_index *ix, unsigned h)
{
	size_t i;

	for(i=h & ix->mask; ix->slots[i].item != NULL; i=(i + 1) & ix->mask){}
	return &ix->slots[i];
}

/* Put item (named name[0..len), not in ix yet) into ix, doubling the
 * array past half full (the old array stays behind in the arena: the
 * doublings add up to less than the last one). MQC_OK or MQC_ERR_NOMEM. */
static int index_add(struct snapshot *s, struct snap_index *ix, void *item, unsigned h,
		size_t len)
{
	struct snap_slot *sl;

	if(ix->slots == NULL || (ix->count + 1) * 2 > ix->mask + 1){
		const size_t n = ix->slots == NULL ? 16 : (ix->mask + 1) * 2;
		const struct snap_slot *old = ix->slots;
		const size_t oldn = old == NULL ? 0 : ix->mask + 1;
		size_t j;

		sl = arena_alloc(s, n * sizeof(*sl));
		if(sl == NULL) return MQC_ERR_NOMEM;
		ix->slots = sl;
		ix->mask = n - 1;
		for(j=0; j<oldn; j++){
			if(old[j].item != NULL) *free_slot(ix, old[j].hash) = old[j];
		}
	}
	sl = free_slot(ix, h);
	sl->hash = h;
	sl->len = (uint32_t)len;
	sl->item = item;
	ix->count++;
	return MQC_OK;
}

struct snap_user *snapshot__user(const struct snapshot *s, const char *name, size_t len)
{
	if(s == NULL || name == NULL || len == 0 || len > NAME_MAX_LEN) return NULL;
	return index_find(&s->user_index, name, len, offsetof(struct snap_user, name));
}

struct snap_room *snapshot__room(const struct snapshot *s, const char *name, size_t len)
{
	if(s == NULL || name == NULL || len == 0 || len > NAME_MAX_LEN) return NULL;
	return index_find(&s->room_index, name, len, offsetof(struct snap_room, name));
}

bool snapshot__name_in(const struct snap_index *set, const char *name, size_t len)
{
	if(set == NULL || len == 0 || len > NAME_MAX_LEN) return false;
	return index_find(set, name, len, offsetof(struct snap_name, name)) != NULL;
}

/* Add a user known not to be there yet (the store's primary key says so). */
static struct snap_user *add_user(struct snapshot *s, const char *name, size_t len,
		enum user_kind kind, bool enabled, const char *pwhash)
{
	struct snap_user *u;
	size_t hlen;
	char *h;
	
	hlen = strlen(pwhash);
	u = arena_alloc(s, sizeof(*u));
	h = arena_alloc(s, hlen + 1);
	if(u == NULL || h == NULL) return NULL;
	memcpy(h, pwhash, hlen + 1);
	memcpy(u->name, name, len);
	u->len = (uint8_t)len;
	u->kind = kind;
	u->enabled = enabled;
	u->pwhash = h;
	u->hash = snapshot__name_hash(name, len);
	if(index_add(s, &s->user_index, u, u->hash, len) != MQC_OK) return NULL;
	/* Prepended: the sweep's order does not matter. */
	u->next = s->users;
	s->users = u;
	s->user_count++;
	return u;
}

struct snap_user *snapshot__add_user(struct snapshot *s, const char *name, enum user_kind kind,
		bool enabled, const char *pwhash)
{
	size_t len;

	if(name == NULL || pwhash == NULL) return NULL;
	len = strlen(name);
	if(len == 0 || len > NAME_MAX_LEN) return NULL;
	if(snapshot__user(s, name, len)) return NULL;
	return add_user(s, name, len, kind, enabled, pwhash);
}

struct snap_room *snapshot__add_room(struct snapshot *s, const char *name)
{
	struct snap_room *r;
	size_t len;

	if(name == NULL) return NULL;
	len = strlen(name);
	if(len == 0 || len > NAME_MAX_LEN) return NULL;
	if(snapshot__room(s, name, len)) return NULL;
	r = arena_alloc(s, sizeof(*r));
	if(r == NULL) return NULL;
	memcpy(r->name, name, len);
	r->len = (uint8_t)len;
	if(index_add(s, &s->room_index, r, snapshot__name_hash(name, len), len) != MQC_OK) return NULL;
	s->room_count++;
	return r;
}

/* Add name to set unless it is there. MQC_OK, MQC_ERR_INVAL or MQC_ERR_NOMEM. */
static int set_add(struct snapshot *s, struct snap_index *set, const char *name)
{
	struct snap_name *n;
	size_t len = strlen(name);

	if(len == 0 || len > NAME_MAX_LEN) return MQC_ERR_INVAL;
	if(snapshot__name_in(set, name, len)) return MQC_OK;
	n = arena_alloc(s, offsetof(struct snap_name, name) + len + 1);
	if(n == NULL) return MQC_ERR_NOMEM;
	memcpy(n->name, name, len);
	n->len = (uint8_t)len;
	return index_add(s, set, n, snapshot__name_hash(name, len), len);
}

/* set_add to the set of a row's owner (a room's members, a user's
 * blocks) and count the row in *count. An owner not in the snapshot
 * (set NULL) skips the row: it always has one (foreign key); be safe. */
static int owner_set_add(struct snapshot *s, struct snap_index *set, const char *name,
		size_t *count)
{
	int rc;

	if(set == NULL) return MQC_OK;
	rc = set_add(s, set, name);
	if(rc == MQC_OK) (*count)++;
	return rc;
}

int snapshot__add_member(struct snapshot *s, const char *room, const char *user)
{
	struct snap_room *r;
	struct snap_user *u;
	struct snap_room_ref *ref;
	int rc;

	if(room == NULL || user == NULL) return MQC_ERR_INVAL;
	r = snapshot__room(s, room, strlen(room));
	rc = owner_set_add(s, r ? &r->members : NULL, user, &s->member_count);
	u = snapshot__user(s, user, strlen(user));
	if(rc != MQC_OK || r == NULL || u == NULL) return rc;
	/* The user's side, for snapshot__sees (a membership row is unique). */
	ref = arena_alloc(s, sizeof(*ref));
	if(ref == NULL) return MQC_ERR_NOMEM;
	ref->room = r;
	ref->next = u->rooms;
	u->rooms = ref;
	return MQC_OK;
}

int snapshot__set_privacy(struct snapshot *s, const char *user, enum privacy_level presence,
		enum privacy_level room_adds)
{
	struct snap_user *u = user ? snapshot__user(s, user, strlen(user)) : NULL;

	if(u == NULL) return MQC_ERR_NOTFOUND;
	u->presence_vis = (uint8_t)presence;
	u->room_adds = (uint8_t)room_adds;
	return MQC_OK;
}

int snapshot__add_contact(struct snapshot *s, const char *user, const char *contact)
{
	struct snap_user *u;

	if(user == NULL || contact == NULL) return MQC_ERR_INVAL;
	u = snapshot__user(s, user, strlen(user));
	return owner_set_add(s, u ? &u->contacts : NULL, contact, &s->contact_count);
}

bool snapshot__sees(const struct snap_user *target, const struct snap_user *viewer)
{
	const struct snap_room_ref *r;

	if(target == viewer || target->kind == USER_KIND_SERVICE) return true;
	switch((enum privacy_level)target->presence_vis){
		case PRIVACY_EVERYONE: return true;
		case PRIVACY_NOBODY: return false;
		case PRIVACY_CONTACTS: case PRIVACY_LEVEL_COUNT: break;
	}
	if(snapshot__user_in(&target->contacts, viewer)) return true;
	for(r = target->rooms; r != NULL; r = r->next){
		if(snapshot__user_in(&r->room->members, viewer)) return true;
	}
	return false;
}

int snapshot__add_block(struct snapshot *s, const char *user, const char *blocked)
{
	struct snap_user *u;

	if(user == NULL || blocked == NULL) return MQC_ERR_INVAL;
	u = snapshot__user(s, user, strlen(user));
	return owner_set_add(s, u ? &u->blocked : NULL, blocked, &s->block_count);
}

/* A gone name in s's arena, prepended to *list. MQC_OK or MQC_ERR_NOMEM. */
static int gone_add(struct snapshot *s, struct snap_gone **list, const char *name, size_t len,
		enum user_kind kind)
{
	struct snap_gone *g = arena_alloc(s, offsetof(struct snap_gone, name) + len + 1);

	if(g == NULL) return MQC_ERR_NOMEM;
	memcpy(g->name, name, len);
	g->len = (uint8_t)len;
	g->kind = kind;
	g->next = *list;
	*list = g;
	return MQC_OK;
}

int snapshot__vanished(struct snapshot *s, const struct snapshot *prev)
{
	const struct snap_user *u;

	if(prev == NULL) return MQC_OK;
	for(u=prev->users; u; u=u->next){
		if(snapshot__index_find_h(&s->user_index, u->hash, u->name, u->len,
				offsetof(struct snap_user, name)) != NULL){
			continue;
		}
		if(gone_add(s, &s->vanished, u->name, u->len, u->kind) != MQC_OK) return MQC_ERR_NOMEM;
		s->vanished_count++;
	}
	return MQC_OK;
}

/* ---- loading from the store ---- */

static int user_cb(const struct userdb_user *row, void *arg)
{
	struct snapshot *s = arg;

	/* The store validates names on write; a row that is not valid anyway
	 * (written by hand) is left out so it can never log in. */
	if(!names__valid_str(row->name) || user_kind__name(row->kind)[0] == '?') return MQC_OK;
	/* Names are the table's primary key: no duplicate check needed. */
	if(add_user(s, row->name, strlen(row->name), row->kind, row->enabled, row->pwhash) == NULL){
		return MQC_ERR_NOMEM;
	}
	return MQC_OK;
}

static int room_cb(const char *room, int retention_days, int64_t created, void *arg)
{
	struct snapshot *s = arg;

	(void)retention_days;
	(void)created;
	if(room == NULL || !names__valid_str(room)) return MQC_OK;
	if(snapshot__add_room(s, room) == NULL){
		return snapshot__room(s, room, strlen(room)) ? MQC_OK : MQC_ERR_NOMEM;
	}
	return MQC_OK;
}

static int member_cb(const char *room, const char *user, void *arg)
{
	if(room == NULL || user == NULL) return MQC_OK;
	return snapshot__add_member(arg, room, user) == MQC_ERR_NOMEM ? MQC_ERR_NOMEM : MQC_OK;
}

int snapshot__add_device(struct snapshot *s, const char *user, const char *device,
		const unsigned char digest[DEVTOKEN_DIGEST_LEN])
{
	struct snap_user *u;
	struct snap_device *d;
	size_t len;
	uint64_t h;

	if(user == NULL || device == NULL) return MQC_ERR_INVAL;
	len = strlen(device);
	if(!names__valid_device(device, len)) return MQC_ERR_INVAL;
	u = snapshot__user(s, user, strlen(user));
	if(u == NULL) return MQC_ERR_NOTFOUND;
	if(snapshot__device(u, device, len)) return MQC_ERR_INVAL;
	d = arena_alloc(s, sizeof(*d));
	if(d == NULL) return MQC_ERR_NOMEM;
	memcpy(d->digest, digest, DEVTOKEN_DIGEST_LEN);
	memcpy(d->name, device, len);
	d->len = (uint8_t)len;
	d->next = u->devices;
	u->devices = d;
	s->device_count++;
	/* Order-free (a sum) and keyed by the whole row: the token's digest
	 * is random, so its first bytes are hash enough. */
	h = snapshot__mix(u->hash, snapshot__name_hash(device, len));
	h = snapshot__mix(h, snapshot__load64(digest));
	s->devices_sum += h;
	return MQC_OK;
}

const struct snap_device *snapshot__device(const struct snap_user *u, const char *name, size_t len)
{
	const struct snap_device *d;

	for(d = u->devices; d != NULL; d = d->next){
		if(d->len == len && memcmp(d->name, name, len) == 0) return d;
	}
	return NULL;
}

static int device_cb(const struct userdb_device *row, void *arg)
{
	unsigned char digest[DEVTOKEN_DIGEST_LEN];
	int rc;

	/* A row written by hand that is not valid is left out: no token
	 * can match it. */
	if(!devtoken__from_hex(row->token_sha256, digest)) return MQC_OK;
	rc = snapshot__add_device(arg, row->user, row->device, digest);
	return rc == MQC_ERR_NOMEM ? MQC_ERR_NOMEM : MQC_OK;
}

static int privacy_cb(const char *user, const struct userdb_privacy *p, void *arg)
{
	int rc = snapshot__set_privacy(arg, user, p->presence, p->room_adds);
	return rc == MQC_ERR_NOMEM ? MQC_ERR_NOMEM : MQC_OK;
}

static int contact_cb(const char *user, const char *contact, int64_t since, void *arg)
{
	int rc;

	(void)since;
	rc = snapshot__add_contact(arg, user, contact);
	return rc == MQC_ERR_NOMEM ? MQC_ERR_NOMEM : MQC_OK;
}

static int setting_cb(const char *key, const char *value, void *arg)
{
	struct snapshot *s = arg;

	/* A value settings.h does not take (written by hand) is left out:
	 * the plugin's own option applies. */
	if(strcmp(key, SETTING_REGISTRATION) == 0){
		s->has_registration = registration__parse(value, &s->registration);
	}
	return MQC_OK;
}

static int block_cb(const char *user, const char *blocked, void *arg)
{
	if(user == NULL || blocked == NULL) return MQC_OK;
	return snapshot__add_block(arg, user, blocked) == MQC_ERR_NOMEM ? MQC_ERR_NOMEM : MQC_OK;
}

/* A retired name (an account deleted, see common/userdb.h) that no account
 * has again goes to s->retired, for the start-up presence sweep: the
 * account may have been deleted while the broker was down. */
static int retired_cb(const char *name, int64_t created, int64_t deleted, void *arg)
{
	struct snapshot *s = arg;
	size_t len;

	(void)created;
	(void)deleted;
	if(name == NULL || !names__valid_str(name)) return MQC_OK;
	len = strlen(name);
	if(snapshot__user(s, name, len) != NULL) return MQC_OK;        /* restored or taken again */
	if(gone_add(s, &s->retired, name, len, 0) != MQC_OK) return MQC_ERR_NOMEM;
	s->retired_count++;
	return MQC_OK;
}

int snapshot__load_into(struct userdb *udb, struct snapshot *s, char *err, size_t errlen)
{
	int rc;
	const char *what = "begin";

	/* One read transaction: users, rooms, members and blocks are one
	 * consistent picture even while the archiver writes. */
	rc = userdb__begin_read(udb);
	if(rc) goto fail;
	what = "users";
	rc = userdb__user_each(udb, user_cb, s);
	if(rc) goto fail;
	what = "retired names";
	rc = userdb__retired_each(udb, retired_cb, s);
	if(rc) goto fail;
	what = "rooms";
	rc = userdb__room_each(udb, room_cb, s);
	if(rc) goto fail;
	what = "members";
	rc = userdb__member_each(udb, NULL, NULL, member_cb, s);
	if(rc) goto fail;
	what = "blocks";
	rc = userdb__block_each(udb, NULL, block_cb, s);
	if(rc) goto fail;
	what = "devices";
	rc = userdb__device_each(udb, NULL, device_cb, s);
	if(rc) goto fail;
	what = "privacy";
	rc = userdb__privacy_each(udb, privacy_cb, s);
	if(rc) goto fail;
	what = "contacts";
	rc = userdb__contact_each(udb, NULL, contact_cb, s);
	if(rc) goto fail;
	what = "settings";
	rc = userdb__setting_each(udb, setting_cb, s);
	if(rc) goto fail;
	rc = userdb__commit(udb);
	if(rc){
		what = "commit";
		goto fail;
	}
	return MQC_OK;

fail:
	if(s->full){
		snprintf(err, errlen, "reading %s: the store needs more than the %zu MiB of"
				" plugin_opt_snapshot_mb", what, s->region_size >> 20);
	}else{
		snprintf(err, errlen, "reading %s: %s (%s)", what, mqc_strerror(rc), userdb__errmsg(udb));
	}
	userdb__rollback(udb);
	return rc;
}

int snapshot__load(struct userdb *udb, struct snapshot **out, char *err, size_t errlen)
{
	struct snapshot *s;
	int rc;

	*out = NULL;
	s = snapshot__new();
	if(s == NULL){
		snprintf(err, errlen, "out of memory");
		return MQC_ERR_NOMEM;
	}
	rc = snapshot__load_into(udb, s, err, errlen);
	if(rc){
		snapshot__free(s);
		return rc;
	}
	*out = s;
	return MQC_OK;
}
