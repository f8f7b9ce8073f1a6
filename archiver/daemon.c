/* daemon.c - the archiver daemon's main loop (stub, being written). */
#include <stdio.h>

#include "daemon.h"

int daemon__main(const char *datadir, int argc, char **argv)
{
	(void)datadir; (void)argc; (void)argv;
	fprintf(stderr, "Error: run is not implemented yet\n");
	return 1;
}
