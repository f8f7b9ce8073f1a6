/* timeutil.h - clocks. */
#ifndef MQCHAT_TIMEUTIL_H
#define MQCHAT_TIMEUTIL_H

#include <stdint.h>

/* Wall clock, milliseconds since the Unix epoch (for stored times). */
int64_t time__now_ms(void);
/* Monotonic clock in milliseconds (for timers, timeouts and backoff). */
int64_t time__mono_ms(void);
/* Monotonic clock in nanoseconds (for latency measurements). */
int64_t time__mono_ns(void);

#endif
