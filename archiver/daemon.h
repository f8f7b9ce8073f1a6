/* daemon.h - the archiver daemon (`mqchat-archiver [--data DIR] run ...`). */
#ifndef MQCHAT_DAEMON_H
#define MQCHAT_DAEMON_H

/* Run the daemon until SIGTERM/SIGINT. datadir is the data folder (auth.db,
 * archive.db, archiver.pw); argv[0] is "run", the rest its options.
 * Returns the process exit status (0 after a clean stop). */
int daemon__main(const char *datadir, int argc, char **argv);

#endif
