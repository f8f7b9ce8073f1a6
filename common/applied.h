/* applied.h - "has the running broker applied my change to the user store?"
 *
 * A change to auth.db (a new account, a block, a disabled user) is in force
 * only once the broker's plugin has swapped in a snapshot that holds it.
 * Writers (the CLI, the archiver) answer "done" only then, so a login made
 * right after `user add` returns, or a message sent right after `block`
 * answered, is decided on the new state every time.
 *
 * The plugin's loader process keeps a small file beside the store,
 * "<store>-applied": the monotonic time (CLOCK_MONOTONIC, the same clock in
 * every process of the machine) at which it began reading the newest
 * snapshot that the broker has taken. A snapshot read from a time after a
 * commit holds that commit. The loader holds a shared fcntl lock on the file
 * while it runs, so a writer tells a running broker from a file left behind
 * (no lock: nobody to wait for). */
#ifndef MQCHAT_APPLIED_H
#define MQCHAT_APPLIED_H

#include <stdbool.h>
#include <stdint.h>

#define APPLIED_SUFFIX "-applied"
/* How long the CLI waits by default before it says the change is not in
 * force yet (it still is committed). */
#define APPLIED_WAIT_MS 5000

/* ---- the loader's side ---- */

struct applied_mark {
	int fd;                 /* -1: none (not made yet, or cannot be) */
	bool failed;            /* making it failed once: do not retry */
};

/* Write started_ns (the start of the read of a snapshot the broker now
 * uses) to "<store>-applied", making the file and taking its lock on the
 * first call. Returns MQC_OK or MQC_ERR_IO (the file cannot be made: the
 * writers then do not wait; said once by the caller). */
int applied__publish(struct applied_mark *mk, const char *store_path, int64_t started_ns);
void applied__close(struct applied_mark *mk);

/* ---- the writers' side ---- */

enum applied_state {
	APPLIED_YES,            /* the broker uses a snapshot with the change */
	APPLIED_NOT_YET,        /* a broker runs and has not applied it yet */
	APPLIED_NO_BROKER,      /* no broker reads this store now */
};

/* One look: has the broker reading store_path applied a commit made at
 * commit_ns (time__mono_ns, taken after the commit returned)? */
enum applied_state applied__check(const char *store_path, int64_t commit_ns);
/* Wait until applied__check says YES or NO_BROKER, at most timeout_ms.
 * Returns the last state (NOT_YET when the time ran out). */
enum applied_state applied__wait(const char *store_path, int64_t commit_ns, int timeout_ms);

#endif
