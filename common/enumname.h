/* enumname.h - an enum's names as a table indexed by its values: the one
 * spelling that both its name and its parse functions read (user kinds,
 * privacy levels, registration modes). */
#ifndef MQCHAT_ENUMNAME_H
#define MQCHAT_ENUMNAME_H

#include <stddef.h>
#include <string.h>

/* names[v], or "?" for a value the table lacks. */
static inline const char *enumname__name(const char *const *names, size_t n, int v)
{
	return v >= 0 && (size_t)v < n && names[v] != NULL ? names[v] : "?";
}

/* The value whose name is s, or -1. */
static inline int enumname__parse(const char *const *names, size_t n, const char *s)
{
	size_t i;

	for(i = 0; s != NULL && i < n; i++){
		if(names[i] != NULL && strcmp(s, names[i]) == 0) return (int)i;
	}
	return -1;
}

#endif
