/* settings.c - the settings table: see settings.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "enumname.h"
#include "settings.h"

static const char *const registration_names[REGISTRATION_MODE_COUNT] = {
	[REGISTRATION_OFF] = "off",
	[REGISTRATION_INVITE] = "invite",
	[REGISTRATION_OPEN] = "open",
};

const char *registration__name(enum registration_mode mode)
{
	return enumname__name(registration_names, REGISTRATION_MODE_COUNT, (int)mode);
}

bool registration__parse(const char *s, enum registration_mode *out)
{
	int v = enumname__parse(registration_names, REGISTRATION_MODE_COUNT, s);

	if(v < 0) return false;
	*out = (enum registration_mode)v;
	return true;
}

static const char *const room_create_names[] = {"everyone", "nobody"};

static const struct setting_def defs[] = {
	{SETTING_REGISTRATION, registration_names, REGISTRATION_MODE_COUNT, 0, 0,
		"who may make an account: off, invite (with a code) or open"},
	{SETTING_ROOM_CREATE, room_create_names, 2, 0, 0,
		"who may create rooms with the room_create op: everyone (default) or nobody"},
	{SETTING_ROOMS_PER_OWNER, NULL, 0, 0, 100000,
		"rooms one person may own (default 20)"},
	{SETTING_ROOM_MEMBERS_MAX, NULL, 0, 1, 1000000,
		"members one room may have when its members add them (default 1000)"},
	{SETTING_EDIT_WINDOW, NULL, 0, 0, EDIT_WINDOW_MAX,
		"seconds after sending in which people may edit or delete their own texts"
		" (default 3600; 0: never)"},
};

const struct setting_def *settings__find(const char *key)
{
	size_t i;

	for(i = 0; key != NULL && i < sizeof(defs) / sizeof(defs[0]); i++){
		if(strcmp(key, defs[i].key) == 0) return &defs[i];
	}
	return NULL;
}

const struct setting_def *settings__all(size_t *n)
{
	*n = sizeof(defs) / sizeof(defs[0]);
	return defs;
}

const char *settings__check(const struct setting_def *d, const char *value)
{
	char *end;
	long v;

	if(value == NULL) return "no value";
	if(d->words != NULL){
		return enumname__parse(d->words, d->nwords, value) >= 0 ? NULL : "not one of its values";
	}
	if(value[0] < '0' || value[0] > '9') return "not a whole number";
	errno = 0;
	v = strtol(value, &end, 10);
	if(errno != 0 || *end != '\0') return "not a whole number";
	return v >= d->min && v <= d->max ? NULL : "out of range";
}
