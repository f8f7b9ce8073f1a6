/* datalock.h - one instance per data folder: an advisory lock file.
 *
 * A process that runs on a data folder (the archiver daemon: archiver.lock;
 * `make run`: run.lock, in DIR.run beside the folder, taken by
 * scripts/run.sh with flock(1)) holds an exclusive flock(2) on its lock
 * file for its whole life and writes one line
 * into it: "<pid> <what>\n". flock, not fcntl: the kernel drops it when the
 * last descriptor closes, so a killed holder (even SIGKILL) frees the
 * folder, and children that inherit the descriptor (run.sh's broker) keep
 * it held. The file stays: removing a lock file races with its next taker.
 * Another taker finds the lock busy and reports the line it reads.
 *
 * The CLI commands take no lock: they share auth.db and archive.db with a
 * running daemon through SQLite's own locking. */
#ifndef MQCHAT_DATALOCK_H
#define MQCHAT_DATALOCK_H

#include <stddef.h>

#define DATALOCK_ARCHIVER "archiver.lock"
#define DATALOCK_RUN "run.lock"

/* Lock DIR/name for this process's life without waiting; what says who
 * holds it ("mqchat-archiver run"). On success returns MQC_OK and the
 * descriptor in *fd (close-on-exec; keep it open: closing it unlocks).
 * MQC_ERR_BUSY: another process holds it, err says which ("DIR is in use
 * by pid N (WHAT)"); MQC_ERR_NOTFOUND: DIR does not exist; MQC_ERR_PERM:
 * no permission (err names the path); MQC_ERR_IO otherwise. */
int datalock__take(const char *dir, const char *name, const char *what, int *fd,
		char *err, size_t errlen);

/* The holder's line of DIR/name ("<pid> <what>") into out, without the
 * newline; "" if the file is missing or empty. */
void datalock__holder(const char *dir, const char *name, char *out, size_t outlen);

#endif
