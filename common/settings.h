/* settings.h - the service's settings that the broker's plugin and the
 * archiver both obey, kept in one place: the settings table of the user
 * store (auth.db), written by `mqchat-archiver settings set` and in force
 * within a second in both (the plugin reads it with the rest of the store,
 * the archiver when it answers). A setting the store does not hold takes
 * the value of the program's own configuration (plugin_opt_*, the
 * archiver's config), as before there was a table. README.md lists them. */
#ifndef MQCHAT_SETTINGS_H
#define MQCHAT_SETTINGS_H

#include <stdbool.h>
#include <stddef.h>

enum registration_mode {
	REGISTRATION_OFF = 0,
	REGISTRATION_INVITE = 1,
	REGISTRATION_OPEN = 2,
	REGISTRATION_MODE_COUNT
};

/* "off", "invite", "open"; "?" for anything else. */
const char *registration__name(enum registration_mode mode);
/* The mode named s; false (out unchanged) if s names none. */
bool registration__parse(const char *s, enum registration_mode *out);

#define SETTING_REGISTRATION "registration"
/* Rooms run by their members (docs/PROTOCOL.md): who may create one
 * ("everyone" or "nobody"), how many one person may own, how many members
 * one may have. The archiver's defaults below when unset. */
#define SETTING_ROOM_CREATE "room_create"
#define SETTING_ROOMS_PER_OWNER "rooms_per_owner"
#define SETTING_ROOM_MEMBERS_MAX "room_members_max"
#define ROOM_CREATE_DEFAULT "everyone"
#define ROOMS_PER_OWNER_DEFAULT 20
#define ROOM_MEMBERS_MAX_DEFAULT 1000
/* How long after sending (seconds, by the archiver's clock) a person may
 * edit or delete their own text (the edit and delete RPCs); 0: never. A
 * room's owner and admins delete others' texts there at any time. */
#define SETTING_EDIT_WINDOW "edit_window"
#define EDIT_WINDOW_DEFAULT 3600
#define EDIT_WINDOW_MAX 2592000

/* One setting: its key, and the values it takes (a list of words, or a
 * whole number in [min, max] when words is NULL). */
struct setting_def {
	const char *key;
	const char *const *words;
	size_t nwords;
	long min, max;
	const char *help;               /* one line, for `settings` */
};

/* The setting called key, or NULL. */
const struct setting_def *settings__find(const char *key);
/* Every setting: n of them. */
const struct setting_def *settings__all(size_t *n);
/* NULL if value is one d takes, else why not (for an error message). */
const char *settings__check(const struct setting_def *d, const char *value);

#endif
