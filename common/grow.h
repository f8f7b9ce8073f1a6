/* grow.h - room for one more item in a growing array: the doubling every
 * part's lists spelled for itself. */
#ifndef MQCHAT_GROW_H
#define MQCHAT_GROW_H

#include <stddef.h>

/* items holds *cap items of size bytes, n of them used. Returns an array
 * with room for at least n + 1 (items itself when there is room; else
 * reallocated to twice *cap, or first when *cap is 0, and *cap updated),
 * or NULL when out of memory (items and *cap untouched, items still the
 * caller's). */
void *grow__one(void *items, size_t *cap, size_t n, size_t size, size_t first);

#endif
