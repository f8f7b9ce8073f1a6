/* backup_internal.h - what `backup` (backup.c) and `restore` (restore.c)
 * share: the backup format, the files of a data folder, and the job that
 * writes files under one folder and removes them all on a failure. Private
 * to those two files; each piece is defined once, in backup.c. */
#ifndef MQCHAT_BACKUP_INTERNAL_H
#define MQCHAT_BACKUP_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <sqlite3.h>

#include "cli.h"

#define BACKUP_FORMAT "mqchat-backup"
#define BACKUP_FORMAT_VERSION 1
#define MANIFEST_NAME "MANIFEST"
/* A file being written is NAME.part until it is whole. */
#define PART ".part"
/* push.db's schema version: PUSH_STORE_SCHEMA of archiver/push_store.c,
 * private there (tests/integration/test_backup.py trips if they differ). */
#define PUSH_SCHEMA_VERSION 1
/* The buffer of a job (struct job's buf). */
#define COPY_CHUNK (256 * 1024)
/* A sha256 in hex, with its NUL. */
#define SHA256_HEX 65

enum store_kind {
	NOT_A_STORE = 0,
	STORE_AUTH,
	STORE_ARCHIVE,
	STORE_PUSH,
};

struct store_info {
	const char *what;   /* "user store", ... for messages */
	int version;        /* this program's */
};
/* Indexed by enum store_kind. */
extern const struct store_info backup__store_info[];

/* A file of a data folder that a backup holds. */
struct data_file {
	const char *name;
	enum store_kind store;
	mode_t mode;        /* in a restored folder */
	bool required;      /* init makes it: a folder without it is not one */
};
/* In the order a backup copies them (backup.c says why). */
extern const struct data_file backup__data_files[];
extern const size_t backup__n_data_files;

/* The folders below a backup's: tls/ (also in a restored data folder) and
 * config/ (a backup's only). */
enum { SUB_TLS, SUB_CONFIG, N_SUBS };

/* One backup or restore: where it writes, and everything it wrote there,
 * so that a failure removes all of it and leaves root as it was. The
 * caller sets cli and root and allocates buf; backup__job_free frees the
 * rest. */
struct job {
	struct cli *cli;
	const char *root;        /* DEST, or the data folder a restore makes */
	bool made_root;
	bool made_sub[N_SUBS];
	char **written;          /* paths of the files made under root (.part or final) */
	size_t nwritten, cap;
	unsigned char *buf;      /* COPY_CHUNK bytes */
};

/* ---- paths and folders ---- */

/* dir/rel into out; false if it does not fit. */
bool backup__join(char *out, size_t outlen, const char *dir, const char *rel);
/* A name a backup may hold under tls/ or config/: one path component, not
 * hidden, printable ASCII, not ending in .part (the temporary names). */
bool backup__safe_name(const char *s);
/* The folder path is in, into out ("." for a bare name). */
void backup__parent_of(const char *path, char *out, size_t outlen);
/* fsync the folder dir: CLI_OK or CLI_ERR_RUNTIME (printed). */
int backup__sync_dir(const char *dir);

/* ---- the job: what it wrote, and its undoing ---- */

/* Remember that path (a file just made, O_EXCL: ours, or one SQLite may
 * make beside it) is j's to remove on failure. Out of memory: it is
 * removed at once. CLI_OK or CLI_ERR_RUNTIME (printed). */
int backup__note_written(struct job *j, const char *path);
/* Rename part to final, both under root; j then removes final on failure. */
int backup__publish(struct job *j, const char *part, const char *final);
/* root must be a new or an empty folder; a new one is made with mode.
 * CLI_OK, CLI_ERR_EXISTS if it holds anything, or another exit status
 * (printed; doing: "backup" or "restore", for the message). */
int backup__empty_root(struct job *j, mode_t mode, const char *doing);
/* root/<tls or config>, made with mode the first time it is needed. */
int backup__make_sub(struct job *j, int which, mode_t mode);
/* fsync root's subfolders that j made, then root. */
int backup__sync_all(struct job *j);
/* A failure: remove everything j wrote, and the folders it made. */
void backup__job_undo(struct job *j);
/* Free what j holds (not j). */
void backup__job_free(struct job *j);

/* ---- files ---- */

/* Read the regular file open as in to its end; with out >= 0 write each
 * chunk there too. *size and hex get its size and sha256. 0, or -1 with
 * errno (*wrote: the write failed, not the read). */
int backup__pump(struct job *j, int in, int out, int64_t *size, char hex[SHA256_HEX], bool *wrote);
/* Open path to read: a regular file, never through a link. The descriptor,
 * or -1 with errno (ELOOP: a link; EINVAL: not a regular file). */
int backup__open_regular(const char *path);
/* Why backup__open_regular failed with e, as a message part. */
const char *backup__open_why(int e);
/* Copy the regular file open as in (from: its path, for messages) to a new
 * file path with mode (noted in j), fsynced; *size and hex get what was
 * copied. CLI_OK or an exit status (printed). */
int backup__copy_fd(struct job *j, int in, const char *from, const char *path, mode_t mode,
		int64_t *size, char hex[SHA256_HEX]);

/* ---- stores ---- */

/* The schema version of a store of kind, open as db: MQC_OK and *version,
 * MQC_ERR_SCHEMA when it is not one of ours (no meta row), or another
 * MQC_ERR_*. */
int backup__store_version(sqlite3 *db, enum store_kind kind, int *version);
/* Can this program take version of a store of kind (path: for messages)?
 * CLI_OK; a newer one is CLI_ERR_NODB, saying what to do. */
int backup__check_version(const char *path, enum store_kind kind, int version);
/* The error of a failed backup__store_version (rc) on path: printed, and
 * its exit status returned. */
int backup__version_failed(int rc, const char *path, enum store_kind kind, sqlite3 *db);

#endif
