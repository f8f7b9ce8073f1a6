/* datalock.c - one instance per data folder (see datalock.h). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "datadir.h"
#include "datalock.h"
#include "err.h"

static int lock_path(const char *dir, const char *name, char *out, size_t outlen)
{
	size_t dl = strlen(dir);
	int n = snprintf(out, outlen, "%s%s%s", dir, dl > 0 && dir[dl - 1] == '/' ? "" : "/", name);

	return n > 0 && (size_t)n < outlen ? MQC_OK : MQC_ERR_INVAL;
}

void datalock__holder(const char *dir, const char *name, char *out, size_t outlen)
{
	char path[PATH_MAX];
	ssize_t n;
	int fd;

	if(outlen == 0) return;
	out[0] = '\0';
	if(lock_path(dir, name, path, sizeof(path)) != MQC_OK) return;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if(fd < 0) return;
	n = read(fd, out, outlen - 1);
	close(fd);
	if(n <= 0) n = 0;
	out[n] = '\0';
	out[strcspn(out, "\n")] = '\0';
}

/* "DIR is in use by pid N (WHAT)" from the holder's line, which may be
 * missing for a moment (taken, not yet written). */
static void busy_message(const char *dir, const char *name, char *err, size_t errlen)
{
	char line[256], *end;
	long pid;
	int tries;

	line[0] = '\0';
	/* The holder writes its line right after taking the lock: give it a
	 * few milliseconds rather than report an unknown holder. */
	for(tries = 0; tries < 20 && line[0] == '\0'; tries++){
		datalock__holder(dir, name, line, sizeof(line));
		if(line[0] == '\0') usleep(5000);
	}
	pid = strtol(line, &end, 10);
	if(end == line || pid <= 0 || (*end != ' ' && *end != '\0')){
		mqc_seterr(err, errlen, "%s is in use by another process (it holds %s)", dir, name);
		return;
	}
	while(*end == ' ') end++;
	if(*end) mqc_seterr(err, errlen, "%s is in use by pid %ld (%s)", dir, pid, end);
	else mqc_seterr(err, errlen, "%s is in use by pid %ld", dir, pid);
}

int datalock__take(const char *dir, const char *name, const char *what, int *fd,
		char *err, size_t errlen)
{
	char path[PATH_MAX], line[256];
	int lfd, n, rc;

	*fd = -1;
	if(lock_path(dir, name, path, sizeof(path)) != MQC_OK){
		mqc_seterr(err, errlen, "%s: path too long", dir);
		return MQC_ERR_INVAL;
	}
	lfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
	if(lfd < 0){
		int e = errno;

		/* Say why: a folder that is missing is not one we may not enter. */
		rc = datadir__need_dir(dir, err, errlen);
		if(rc == MQC_OK){
			rc = e == EACCES || e == EPERM || e == EROFS ? MQC_ERR_PERM : MQC_ERR_IO;
			mqc_seterr(err, errlen, "cannot open %s: %s", path, strerror(e));
		}
		return rc;
	}
	if(flock(lfd, LOCK_EX | LOCK_NB) != 0){
		int e = errno;

		close(lfd);
		if(e == EWOULDBLOCK){
			busy_message(dir, name, err, errlen);
			return MQC_ERR_BUSY;
		}
		mqc_seterr(err, errlen, "cannot lock %s: %s", path, strerror(e));
		return MQC_ERR_IO;
	}
	n = snprintf(line, sizeof(line), "%ld %s\n", (long)getpid(), what);
	if(n < 0 || (size_t)n >= sizeof(line) || ftruncate(lfd, 0) != 0
			|| pwrite(lfd, line, (size_t)n, 0) != n){
		int e = errno;

		close(lfd);
		mqc_seterr(err, errlen, "cannot write %s: %s", path, strerror(e));
		return MQC_ERR_IO;
	}
	*fd = lfd;
	return MQC_OK;
}
