/* loader.c - the background thread that reloads the snapshot.
 *
 * It owns its own SQLite connection (PRAGMA data_version only changes for
 * commits made by other connections, so it must stay the same one), polls it
 * every reload_ms, and when it changed builds a complete new snapshot and
 * leaves it in the slot for the broker thread. It never calls into the
 * broker: log lines are left in the slot too, and TICK logs them. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "err.h"
#include "plugin.h"
#include "timeutil.h"

/* After a failed reload, try again this often even without a change. */
#define LOADER_RETRY_MS 5000

/* Leave a log line for the broker thread. Caller holds the mutex. */
static void post_message(struct loader *l, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void post_message(struct loader *l, int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(l->message, sizeof(l->message), fmt, ap);
	va_end(ap);
	l->message_level = level;
	l->has_message = true;
	__atomic_store_n(&l->news, 1, __ATOMIC_RELEASE);
}

/* Report a failed reload once per failure streak. */
static void reload_failed(struct loader *l, const char *why)
{
	pthread_mutex_lock(&l->mutex);
	if(!l->failing){
		post_message(l, MOSQ_LOG_WARNING,
				"mqchat: cannot reload user store %s: %s (keeping the last good snapshot)",
				l->path, why);
	}
	l->failing = true;
	pthread_mutex_unlock(&l->mutex);
}

/* True if the file at path is no longer the one we have open (replaced by
 * rename, or deleted). */
static bool file_replaced(struct loader *l)
{
	struct stat st;

	if(stat(l->path, &st) != 0) return true;
	if(!l->have_ino){
		l->dev = (unsigned long long)st.st_dev;
		l->ino = (unsigned long long)st.st_ino;
		l->have_ino = true;
		return false;
	}
	return (unsigned long long)st.st_dev != l->dev || (unsigned long long)st.st_ino != l->ino;
}

/* One poll: compare data_version, rebuild the snapshot if it changed. */
static void poll_once(struct loader *l, bool force)
{
	struct snapshot *s = NULL, *old;
	char err[400];
	int64_t version = 0;
	int rc;

	/* A WAL database must not be replaced or deleted under an open
	 * connection: SQLite finds the -wal and -shm by name, so a new file
	 * would be read through the old file's log. Keep what we have, say so
	 * loudly, and let a restart read the new file. */
	if(file_replaced(l)){
		reload_failed(l, "the file was replaced or deleted while in use;"
				" restart the broker to read the new one");
		return;
	}
	rc = userdb__data_version(l->udb, &version);
	if(rc){
		snprintf(err, sizeof(err), "data_version: %s (%s)", mqc_strerror(rc), userdb__errmsg(l->udb));
		reload_failed(l, err);
		return;
	}
	/* After a failure, retry on the next change, or every few seconds (a
	 * lock held too long clears by itself): a broken store must not make
	 * this thread rebuild 100,000 users four times a second. */
	if(!force && version == l->version && (!l->failing || time__mono_ms() < l->retry_at)) return;

	rc = snapshot__load(l->udb, &s, err, sizeof(err));
	if(rc){
		l->version = version;
		l->retry_at = time__mono_ms() + LOADER_RETRY_MS;
		reload_failed(l, err);
		return;
	}
	s->data_version = version;
	l->version = version;

	pthread_mutex_lock(&l->mutex);
	old = l->pending;               /* never seen by the broker thread */
	l->pending = s;
	__atomic_store_n(&l->news, 1, __ATOMIC_RELEASE);
	if(l->failing){
		post_message(l, MOSQ_LOG_NOTICE, "mqchat: user store %s readable again", l->path);
	}
	l->failing = false;
	pthread_mutex_unlock(&l->mutex);
	snapshot__free(old);
}

/* Free the snapshots the broker thread retired. Called with the mutex held;
 * frees with it released. */
static void free_retired(struct loader *l)
{
	struct snapshot *list = l->retired, *next;

	if(list == NULL) return;
	l->retired = NULL;
	pthread_mutex_unlock(&l->mutex);
	for(; list; list = next){
		next = list->next_retired;
		snapshot__free(list);
	}
	pthread_mutex_lock(&l->mutex);
}

static void *loader_main(void *arg)
{
	struct loader *l = arg;
	struct timespec ts;
	bool force;

	pthread_mutex_lock(&l->mutex);
	while(!l->stop){
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += l->reload_ms / 1000;
		ts.tv_nsec += (long)(l->reload_ms % 1000) * 1000000L;
		if(ts.tv_nsec >= 1000000000L){
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		/* Sleep until the next poll, freeing retired snapshots as they come. */
		for(;;){
			free_retired(l);
			if(l->stop || l->force) break;
			if(pthread_cond_timedwait(&l->cond, &l->mutex, &ts) == ETIMEDOUT){
				free_retired(l);
				break;
			}
		}
		if(l->stop) break;
		force = l->force;
		l->force = false;
		pthread_mutex_unlock(&l->mutex);

		poll_once(l, force);

		pthread_mutex_lock(&l->mutex);
	}
	pthread_mutex_unlock(&l->mutex);
	return NULL;
}

int loader__start(struct loader *l, struct userdb *udb, const char *path, int64_t version,
		int reload_ms)
{
	pthread_condattr_t attr;

	memset(l, 0, sizeof(*l));
	l->path = strdup(path);
	if(l->path == NULL) return MQC_ERR_NOMEM;
	if(pthread_mutex_init(&l->mutex, NULL) != 0) return MQC_ERR_NOMEM;
	l->mutex_ok = true;
	if(pthread_condattr_init(&attr) != 0) return MQC_ERR_NOMEM;
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	if(pthread_cond_init(&l->cond, &attr) != 0){
		pthread_condattr_destroy(&attr);
		return MQC_ERR_NOMEM;
	}
	pthread_condattr_destroy(&attr);
	l->cond_ok = true;
	l->reload_ms = reload_ms;
	l->version = version;
	l->udb = udb;
	(void)file_replaced(l);
	if(pthread_create(&l->thread, NULL, loader_main, l) != 0){
		l->udb = NULL;
		return MQC_ERR_NOMEM;
	}
	l->started = true;
	return MQC_OK;
}

void loader__force(struct loader *l)
{
	if(!l->started) return;
	pthread_mutex_lock(&l->mutex);
	l->force = true;
	pthread_cond_signal(&l->cond);
	pthread_mutex_unlock(&l->mutex);
}

struct snapshot *loader__take(struct loader *l, char *msg, size_t msglen, int *level,
		bool *has_msg)
{
	struct snapshot *s;

	*has_msg = false;
	if(!l->started) return NULL;
	/* A stale 0 only delays the news to the next tick. */
	if(!__atomic_load_n(&l->news, __ATOMIC_ACQUIRE)) return NULL;
	pthread_mutex_lock(&l->mutex);
	__atomic_store_n(&l->news, 0, __ATOMIC_RELAXED);
	s = l->pending;
	l->pending = NULL;
	if(l->has_message){
		snprintf(msg, msglen, "%s", l->message);
		*level = l->message_level;
		*has_msg = true;
		l->has_message = false;
	}
	pthread_mutex_unlock(&l->mutex);
	return s;
}

void loader__retire(struct loader *l, struct snapshot *old)
{
	if(old == NULL) return;
	if(!l->started){
		snapshot__free(old);
		return;
	}
	pthread_mutex_lock(&l->mutex);
	old->next_retired = l->retired;
	l->retired = old;
	pthread_cond_signal(&l->cond);
	pthread_mutex_unlock(&l->mutex);
}

void loader__cleanup(struct loader *l)
{
	if(l->started){
		pthread_mutex_lock(&l->mutex);
		l->stop = true;
		pthread_cond_signal(&l->cond);
		pthread_mutex_unlock(&l->mutex);
		pthread_join(l->thread, NULL);
		l->started = false;
	}
	snapshot__free(l->pending);
	l->pending = NULL;
	while(l->retired){
		struct snapshot *next = l->retired->next_retired;
		snapshot__free(l->retired);
		l->retired = next;
	}
	userdb__close(l->udb);
	l->udb = NULL;
	if(l->cond_ok) pthread_cond_destroy(&l->cond);
	if(l->mutex_ok) pthread_mutex_destroy(&l->mutex);
	l->cond_ok = l->mutex_ok = false;
	free(l->path);
	l->path = NULL;
}
