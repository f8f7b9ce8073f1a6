/* token.c - the device tokens the client keeps (see token.h): where they
 * live, how they are read and written, and asking the archiver for them. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "session.h"
#include "timeutil.h"
#include "token.h"

/* How long a login waits for the archiver's token: the command's own work
 * is done either way, and a missing archiver should cost little. */
#define TOKEN_WAIT_MS 4000
#define ONESHOT_SUFFIX ".cmd"

void token__oneshot_device(const char *device, char *out)
{
	int keep = DEVICE_MAX_LEN - (int)strlen(ONESHOT_SUFFIX);

	snprintf(out, DEVICE_MAX_LEN + 1, "%.*s%s", keep, device, ONESHOT_SUFFIX);
}

int token__path(const struct options *opt, const char *device, char *path, size_t len,
		bool mkdirs)
{
	char dir[4096];

	if(options__config_dir(dir, sizeof(dir) - 8) != 0){
		errno = ENOENT;
		return -1;
	}
	strcat(dir, "/tokens");
	if(mkdirs && util__mkdirs(dir) != 0) return -1;
	snprintf(path, len, "%s/%s@%s", dir, opt->user, device);
	return 0;
}

bool token__exists(const struct options *opt, const char *device)
{
	char path[4200];
	struct stat st;

	return token__path(opt, device, path, sizeof(path), false) == 0 && lstat(path, &st) == 0;
}

/* EXIT_OK if the folder of path is only its owner's; else said. */
static int check_folder(const char *path)
{
	char dir[4200];
	struct stat st;
	char *slash;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if(slash) *slash = '\0';
	if(stat(dir, &st) == 0 && (st.st_mode & (S_IRWXG | S_IRWXO))){
		util__error("device token folder %s is accessible by group or others; run: chmod 700 %s",
				dir, dir);
		return EXIT_USAGE;
	}
	return EXIT_OK;
}

int token__load(const struct options *opt, const char *device, char out[DEVTOKEN_LEN + 1])
{
	char path[4200], line[DEVTOKEN_LEN + 8];
	FILE *fp;
	size_t n;
	int rc;

	out[0] = '\0';
	if(token__path(opt, device, path, sizeof(path), false) != 0) return EXIT_OK;
	fp = fopen(path, "r");
	if(fp == NULL){
		if(errno == ENOENT) return EXIT_OK;
		util__error("cannot read device token file %s: %s", path, strerror(errno));
		return EXIT_USAGE;
	}
	rc = options__check_private(fp, "device token file", path);
	if(rc == EXIT_OK) rc = check_folder(path);
	if(rc == EXIT_OK){
		if(fgets(line, sizeof(line), fp) == NULL) line[0] = '\0';
		n = strcspn(line, "\r\n");
		if(!devtoken__is_token(line, n)){
			util__error("device token file %s holds no device token; remove it (mqchat logout) "
					"to log in with the password", path);
			rc = EXIT_USAGE;
		}else{
			memcpy(out, line, n);
			out[n] = '\0';
		}
	}
	OPENSSL_cleanse(line, sizeof(line));
	fclose(fp);
	return rc;
}

int token__save(const struct options *opt, const char *device, const char *token)
{
	char path[4200], tmp[4300];
	size_t len = strlen(token);
	int fd, saved;

	if(token__path(opt, device, path, sizeof(path), true) != 0) return EXIT_FAILED;
	/* The pid keeps two commands that store at once apart; rename makes
	 * the file appear whole or not at all. */
	snprintf(tmp, sizeof(tmp), "%s.new.%ld", path, (long)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if(fd < 0) return EXIT_FAILED;
	if(write(fd, token, len) != (ssize_t)len || write(fd, "\n", 1) != 1 || fsync(fd) != 0){
		saved = errno;
		close(fd);
		unlink(tmp);
		errno = saved;
		return EXIT_FAILED;
	}
	if(close(fd) != 0 || rename(tmp, path) != 0){
		saved = errno;
		unlink(tmp);
		errno = saved;
		return EXIT_FAILED;
	}
	return EXIT_OK;
}

bool token__forget(const struct options *opt, const char *device)
{
	char path[4200];

	return token__path(opt, device, path, sizeof(path), false) == 0 && unlink(path) == 0;
}

int token__lock(const struct options *opt, const char *device, int64_t deadline)
{
	char path[4200], lock[4300];
	int fd;

	if(token__path(opt, device, path, sizeof(path), true) != 0) return -1;
	snprintf(lock, sizeof(lock), "%s.lock", path);
	fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if(fd < 0) return -1;
	/* Two one-shot commands of a device share its client id: the second
	 * waits, rather than close the first one's connection. */
	while(flock(fd, LOCK_EX | LOCK_NB) != 0){
		struct timespec ts = {0, 20 * 1000 * 1000};
		if(errno != EWOULDBLOCK || time__mono_ms() >= deadline){
			close(fd);
			return -1;
		}
		nanosleep(&ts, NULL);
	}
	return fd;
}

int token__request(struct session *s, const char *device, const char *password,
		char *why, size_t len)
{
	json_t *req, *resp = NULL;
	const char *tok;
	int64_t until = s->until;
	bool silent = s->silent, quiet = s->quiet;
	int rc;

	req = json_pack("{s:s, s:s, s:s}", "op", "device_token", "device", device,
			"password", password);
	if(req == NULL){
		snprintf(why, len, "out of memory");
		return EXIT_FAILED;
	}
	s->until = time__mono_ms() + TOKEN_WAIT_MS;
	if(until && until < s->until) s->until = until;
	s->silent = s->quiet = true;
	rc = session__rpc(s, req, &resp);
	/* The archiver checks the password at most once a second after a
	 * success (passwd's throttle): a second token, or one right after
	 * passwd, waits for its turn within the bound. */
	if(rc == EXIT_FAILED && !strcmp(s->rpc_code, "rate_limited") && s->rpc_retry_ms > 0
			&& time__mono_ms() + s->rpc_retry_ms < s->until){
		session__wait(s, NULL, NULL, time__mono_ms() + s->rpc_retry_ms, -1);
		rc = session__rpc(s, req, &resp);
	}
	s->until = until;
	s->silent = silent;
	s->quiet = quiet;
	json_object_del(req, "password");
	json_decref(req);
	tok = json_string_value(json_object_get(resp, "token"));
	if(rc == EXIT_OK && (tok == NULL || !devtoken__is_token(tok, strlen(tok)))){
		snprintf(why, len, "the archiver's answer holds no token");
		rc = EXIT_FAILED;
	}else if(rc == EXIT_OK && token__save(s->opt, device, tok) != EXIT_OK){
		snprintf(why, len, "cannot store it: %s", strerror(errno));
		rc = EXIT_FAILED;
	}else if(rc == EXIT_TIMEOUT){
		snprintf(why, len, "no answer from the archiver (is it running?)");
	}else if(rc != EXIT_OK){
		snprintf(why, len, "%s", s->rpc_error[0] ? s->rpc_error : "the request failed");
	}
	json_decref(resp);
	return rc;
}

void token__obtain(struct session *s, const char *password)
{
	char devices[2][DEVICE_MAX_LEN + 1], why[300];
	int i;

	snprintf(devices[0], sizeof(devices[0]), "%s", s->opt->device);
	token__oneshot_device(s->opt->device, devices[1]);
	for(i=0; i<2; i++){
		if(token__exists(s->opt, devices[i])) continue;
		if(token__request(s, devices[i], password, why, sizeof(why)) != EXIT_OK){
			fprintf(stderr, "warning: no device token for %s@%s: %s; the password will be "
					"needed next time\n", s->opt->user, devices[i], why);
			return;
		}
	}
}
