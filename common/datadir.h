/* datadir.h - why a data folder or one of its files cannot be used.
 *
 * "No such file (run init)" is only true when the file is missing: an
 * operator without permission on the folder must be told that instead.
 * These checks stat() the path and turn errno into a message that names
 * the path and the cause. */
#ifndef MQCHAT_DATADIR_H
#define MQCHAT_DATADIR_H

#include <stddef.h>

/* MQC_OK if dir is a folder. MQC_ERR_NOTFOUND: it does not exist (err
 * says to run init); MQC_ERR_PERM: a folder above it may not be entered;
 * MQC_ERR_IO: anything else (not a folder, I/O). err names the path. */
int datadir__need_dir(const char *dir, char *err, size_t errlen);

/* MQC_OK if path (a file in the data folder dir) exists and is readable.
 * MQC_ERR_NOTFOUND: missing (err says to run `mqchat-archiver --data DIR
 * init`); MQC_ERR_PERM: permission denied on the file or a folder on the
 * way (err names the path and who owns dir); MQC_ERR_IO otherwise. */
int datadir__need_file(const char *dir, const char *path, char *err, size_t errlen);

/* Links in the data folder. Whoever may write the folder (the broker's
 * user, when `make run` gives it the folder) could plant a link there to a
 * file only a more privileged process may touch; an mqchat process never
 * makes one, so every link is refused, never followed.
 *
 * MQC_OK if path is missing or a regular file; MQC_ERR_PERM if it is a
 * symbolic link or anything else (err names it and says to remove it);
 * MQC_ERR_IO if it cannot be looked at. */
int datadir__no_link(const char *path, char *err, size_t errlen);

/* datadir__no_link on an SQLite database and on its -wal and -shm files
 * (SQLite follows links and opens them itself: check before it does). */
int datadir__sqlite_no_link(const char *db, char *err, size_t errlen);

#endif
