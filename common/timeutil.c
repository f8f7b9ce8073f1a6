/* timeutil.c - clocks (see timeutil.h). */
#include <time.h>

#include "timeutil.h"

int64_t time__now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t time__mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t time__mono_ms(void)
{
	return time__mono_ns() / 1000000;
}
