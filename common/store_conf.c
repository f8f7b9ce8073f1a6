/* store_conf.c - DATA/store.conf and the PostgreSQL module (see store_conf.h). */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "datadir.h"
#include "err.h"
#include "store_conf.h"

#ifndef MQCHAT_PKGLIBDIR
#define MQCHAT_PKGLIBDIR "/usr/lib/mqchat"
#endif

void store_conf__dir_of(const char *path, char *out, size_t outlen)
{
	const char *slash = strrchr(path, '/');

	if(slash == NULL) snprintf(out, outlen, ".");
	else if(slash == path) snprintf(out, outlen, "/");
	else snprintf(out, outlen, "%.*s", (int)(slash - path), path);
}

/* One "key value" line (value: the rest of the line, trimmed). */
static int parse_line(struct store_conf *out, char *line, int lineno, bool *has_conninfo,
		char *err, size_t errlen)
{
	char *key, *value, *end;

	line[strcspn(line, "\r\n")] = '\0';
	key = line + strspn(line, " \t");
	if(*key == '\0' || *key == '#') return MQC_OK;
	value = key + strcspn(key, " \t");
	if(*value) *value++ = '\0';
	value += strspn(value, " \t");
	end = value + strlen(value);
	while(end > value && (end[-1] == ' ' || end[-1] == '\t')) *--end = '\0';

	if(!strcmp(key, "store")){
		if(!strcmp(value, "sqlite")) out->kind = STORE_SQLITE;
		else if(!strcmp(value, "postgresql")) out->kind = STORE_POSTGRESQL;
		else{
			mqc_seterr(err, errlen, "%s:%d: store is sqlite or postgresql, not '%s'",
					out->path, lineno, value);
			return MQC_ERR_INVAL;
		}
		return MQC_OK;
	}
	if(!strcmp(key, "store_conninfo")){
		if(*value == '\0' || strlen(value) >= sizeof(out->conninfo)){
			mqc_seterr(err, errlen, "%s:%d: store_conninfo needs a libpq connection string"
					" (under %d bytes)", out->path, lineno, STORE_CONNINFO_MAX);
			return MQC_ERR_INVAL;
		}
		snprintf(out->conninfo, sizeof(out->conninfo), "%s", value);
		*has_conninfo = true;
		return MQC_OK;
	}
	mqc_seterr(err, errlen, "%s:%d: unknown setting '%s' (store, store_conninfo)",
			out->path, lineno, key);
	return MQC_ERR_INVAL;
}

int store_conf__read(const char *dir, struct store_conf *out, char *err, size_t errlen)
{
	char line[STORE_CONNINFO_MAX + 64];
	bool has_conninfo = false;
	int rc = MQC_OK, lineno = 0;
	FILE *fp;

	memset(out, 0, sizeof(*out));
	if(snprintf(out->path, sizeof(out->path), "%s/%s", dir, STORE_CONF_NAME) >= (int)sizeof(out->path)){
		mqc_seterr(err, errlen, "%s: path too long", dir);
		return MQC_ERR_INVAL;
	}
	/* A folder we may not enter: the data folder's one wording, with its
	 * owner and mode, as for auth.db. */
	if(access(out->path, F_OK) != 0 && (errno == EACCES || errno == EPERM)){
		return datadir__need_file(dir, out->path, err, errlen);
	}
	/* Whoever may write the folder must not point us at another file. */
	rc = datadir__no_link(out->path, err, errlen);
	if(rc != MQC_OK) return rc;
	fp = fopen(out->path, "r");
	if(fp == NULL){
		int e = errno;

		if(e == ENOENT) return MQC_OK;
		if(e == EACCES || e == EPERM) return datadir__need_file(dir, out->path, err, errlen);
		mqc_seterr(err, errlen, "%s: %s", out->path, strerror(e));
		return MQC_ERR_IO;
	}
	while(rc == MQC_OK && fgets(line, sizeof(line), fp) != NULL){
		lineno++;
		if(strchr(line, '\n') == NULL && !feof(fp)){
			mqc_seterr(err, errlen, "%s:%d: line too long", out->path, lineno);
			rc = MQC_ERR_INVAL;
			break;
		}
		rc = parse_line(out, line, lineno, &has_conninfo, err, errlen);
	}
	fclose(fp);
	if(rc == MQC_OK && out->kind == STORE_POSTGRESQL && !has_conninfo){
		mqc_seterr(err, errlen, "%s: store postgresql needs store_conninfo", out->path);
		rc = MQC_ERR_INVAL;
	}
	return rc;
}

bool store_conf__auth_is_file(const char *dir)
{
	struct store_conf conf;
	char err[8];

	return store_conf__read(dir, &conf, err, sizeof(err)) == MQC_OK && conf.kind == STORE_SQLITE;
}

void *store_conf__pg_symbol(const char *name, char *err, size_t errlen)
{
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	static void *module;   /* loaded once, never closed */
	char dir[4096], path[4200];
	const char *why = "";
	Dl_info self;
	void *sym;

	pthread_mutex_lock(&lock);
	if(module == NULL && dladdr((void *)store_conf__pg_symbol, &self) != 0 && self.dli_fname){
		store_conf__dir_of(self.dli_fname, dir, sizeof(dir));
		snprintf(path, sizeof(path), "%s/%s", dir, STORE_PG_MODULE);
		module = dlopen(path, RTLD_NOW | RTLD_LOCAL);
		if(module == NULL) why = dlerror();
		/* `make install` installs what was built, for any PREFIX: a
		 * program finds the module beside its bin/ folder. */
		snprintf(path, sizeof(path), "%s/../lib/mqchat/%s", dir, STORE_PG_MODULE);
		if(module == NULL && access(path, F_OK) == 0){
			module = dlopen(path, RTLD_NOW | RTLD_LOCAL);
			if(module == NULL) why = dlerror();
		}
	}
	if(module == NULL){
		snprintf(path, sizeof(path), "%s/%s", MQCHAT_PKGLIBDIR, STORE_PG_MODULE);
		module = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	}
	if(module == NULL){
		mqc_seterr(err, errlen, "store postgresql: cannot load %s (%s; %s)", STORE_PG_MODULE,
				why, dlerror());
		pthread_mutex_unlock(&lock);
		return NULL;
	}
	pthread_mutex_unlock(&lock);
	sym = dlsym(module, name);
	if(sym == NULL) mqc_seterr(err, errlen, "store postgresql: %s: no %s", STORE_PG_MODULE, name);
	return sym;
}
