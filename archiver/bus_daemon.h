/* bus_daemon.h - `mqchat-archiver bus` (bus.c): the node's carrier of
 * messages to and from the other nodes over NATS. */
#ifndef MQCHAT_ARCHIVER_BUS_DAEMON_H
#define MQCHAT_ARCHIVER_BUS_DAEMON_H

#define BUS_USAGE \
	"bus --node NAME --nats URL [-c FILE] [--host H] [--port P] [--user U]\n" \
	"    [--password-file F] [--wake on|off] [--log FILE] [-v]"

/* Run until SIGTERM or SIGINT; argv[0] is "bus". The exit status. */
int bus__main(const char *datadir, int argc, char **argv);

#endif
