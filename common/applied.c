/* applied.c - the "<store>-applied" mark: see applied.h. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "applied.h"
#include "err.h"
#include "timeutil.h"

/* The record: the time twice, so a read that meets a write half done (the
 * kernel does not promise otherwise for regular files) is seen as such. */
struct record {
	int64_t a, b;
};

/* How often a waiting writer looks again. */
#define WAIT_STEP_MS 5

static bool mark_path(const char *store_path, char *out, size_t outlen)
{
	int n = snprintf(out, outlen, "%s%s", store_path, APPLIED_SUFFIX);

	return n > 0 && (size_t)n < outlen;
}

static int whole_file_lock(int fd, short type, int cmd, struct flock *fl)
{
	memset(fl, 0, sizeof(*fl));
	fl->l_type = type;
	fl->l_whence = SEEK_SET;
	fl->l_start = 0;
	fl->l_len = 0;
	return fcntl(fd, cmd, fl);
}

int applied__publish(struct applied_mark *mk, const char *store_path, int64_t started_ns)
{
	struct record rec = {started_ns, started_ns};
	char path[PATH_MAX];
	struct flock fl;
	bool first = false;

	if(mk->fd < 0){
		if(mk->failed) return MQC_ERR_IO;
		if(!mark_path(store_path, path, sizeof(path))){
			mk->failed = true;
			return MQC_ERR_IO;
		}
		/* Never through a link: the data folder may be writable by others. */
		mk->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
		if(mk->fd < 0){
			mk->failed = true;
			return MQC_ERR_IO;
		}
		(void)fchmod(mk->fd, 0644);   /* whatever the umask: operators read it */
		first = true;
	}
	if(pwrite(mk->fd, &rec, sizeof(rec), 0) != (ssize_t)sizeof(rec)) return MQC_ERR_IO;
	/* The lock after the first write: a time left by an earlier run (or
	 * an earlier boot) is never read as ours. */
	if(first && whole_file_lock(mk->fd, F_RDLCK, F_SETLK, &fl) != 0){
		applied__close(mk);
		mk->failed = true;
		return MQC_ERR_IO;
	}
	return MQC_OK;
}

void applied__close(struct applied_mark *mk)
{
	if(mk->fd >= 0) close(mk->fd);
	mk->fd = -1;
}

enum applied_state applied__check(const char *store_path, int64_t commit_ns)
{
	char path[PATH_MAX];
	struct record rec;
	struct flock fl;
	enum applied_state st = APPLIED_NOT_YET;
	ssize_t n;
	int fd;

	if(!mark_path(store_path, path, sizeof(path))) return APPLIED_NO_BROKER;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if(fd < 0) return APPLIED_NO_BROKER;
	/* Would a write lock be refused? Then a loader holds its read lock. */
	if(whole_file_lock(fd, F_WRLCK, F_GETLK, &fl) != 0 || fl.l_type == F_UNLCK){
		st = APPLIED_NO_BROKER;
	}else{
		n = pread(fd, &rec, sizeof(rec), 0);
		if(n == (ssize_t)sizeof(rec) && rec.a == rec.b && rec.a > commit_ns) st = APPLIED_YES;
	}
	close(fd);
	return st;
}

enum applied_state applied__wait(const char *store_path, int64_t commit_ns, int timeout_ms)
{
	const int64_t end = time__mono_ms() + timeout_ms;
	const struct timespec step = {.tv_sec = 0, .tv_nsec = WAIT_STEP_MS * 1000000L};
	enum applied_state st;

	for(;;){
		st = applied__check(store_path, commit_ns);
		if(st != APPLIED_NOT_YET || time__mono_ms() >= end) return st;
		nanosleep(&step, NULL);
	}
}
