/* datadir.c - why a data folder or one of its files cannot be used. */
#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "datadir.h"
#include "err.h"

/* " (DIR belongs to USER, mode 0750: run this as that user or as root)",
 * or "" when dir itself cannot be looked at. */
static void owner_hint(const char *dir, char *out, size_t outlen)
{
	struct stat st;
	struct passwd *pw;
	char uid[32];

	out[0] = '\0';
	if(stat(dir, &st) != 0){
		snprintf(out, outlen, " (a folder above %s may not be entered)", dir);
		return;
	}
	pw = getpwuid(st.st_uid);
	snprintf(uid, sizeof(uid), "uid %ld", (long)st.st_uid);
	snprintf(out, outlen, " (%s belongs to %s, mode %04o: run this as that user or as root)",
			dir, pw ? pw->pw_name : uid, (unsigned)(st.st_mode & 07777));
}

int datadir__need_dir(const char *dir, char *err, size_t errlen)
{
	struct stat st;

	if(stat(dir, &st) == 0){
		if(S_ISDIR(st.st_mode)) return MQC_OK;
		mqc_seterr(err, errlen, "%s: not a folder", dir);
		return MQC_ERR_IO;
	}
	if(errno == ENOENT){
		mqc_seterr(err, errlen, "%s: no such folder (run `mqchat-archiver --data %s init`)",
				dir, dir);
		return MQC_ERR_NOTFOUND;
	}
	mqc_seterr(err, errlen, "%s: %s", dir, strerror(errno));
	return errno == EACCES ? MQC_ERR_PERM : MQC_ERR_IO;
}

int datadir__need_file(const char *dir, const char *path, char *err, size_t errlen)
{
	char hint[512];
	struct stat st;
	int e;

	if(stat(path, &st) == 0 && access(path, R_OK) == 0) return MQC_OK;
	e = errno;
	if(e == ENOENT){
		mqc_seterr(err, errlen, "%s: no such file (run `mqchat-archiver --data %s init`)",
				path, dir);
		return MQC_ERR_NOTFOUND;
	}
	if(e == EACCES || e == EPERM){
		owner_hint(dir, hint, sizeof(hint));
		mqc_seterr(err, errlen, "%s: permission denied%s", path, hint);
		return MQC_ERR_PERM;
	}
	mqc_seterr(err, errlen, "%s: %s", path, strerror(e));
	return MQC_ERR_IO;
}

int datadir__no_link(const char *path, char *err, size_t errlen)
{
	struct stat st;

	if(lstat(path, &st) != 0){
		if(errno == ENOENT) return MQC_OK;
		mqc_seterr(err, errlen, "%s: %s", path, strerror(errno));
		return MQC_ERR_IO;
	}
	if(S_ISREG(st.st_mode)) return MQC_OK;
	mqc_seterr(err, errlen, "%s is %s, not a file mqchat made: refusing to follow or open it"
			" (remove it; someone who may write the data folder put it there)", path,
			S_ISLNK(st.st_mode) ? "a symbolic link" : "not a regular file");
	return MQC_ERR_PERM;
}

int datadir__sqlite_no_link(const char *db, char *err, size_t errlen)
{
	static const char *const suffixes[] = {"", "-wal", "-shm"};
	char path[PATH_MAX];
	size_t i;
	int rc;

	for(i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++){
		if(snprintf(path, sizeof(path), "%s%s", db, suffixes[i]) >= (int)sizeof(path)){
			mqc_seterr(err, errlen, "%s: path too long", db);
			return MQC_ERR_INVAL;
		}
		rc = datadir__no_link(path, err, errlen);
		if(rc != MQC_OK) return rc;
	}
	return MQC_OK;
}
