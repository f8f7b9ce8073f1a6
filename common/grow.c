/* grow.c - room for one more item in a growing array (see grow.h). */
#include <stdint.h>
#include <stdlib.h>

#include "grow.h"

void *grow__one(void *items, size_t *cap, size_t n, size_t size, size_t first)
{
	size_t want;
	void *v;

	if(n < *cap) return items;
	want = *cap ? 2 * *cap : first;
	if(want <= *cap || want > SIZE_MAX / size) return NULL;
	v = realloc(items, want * size);
	if(v != NULL) *cap = want;
	return v;
}
