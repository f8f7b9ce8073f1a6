/* prompt.c - reading a secret from the terminal without echo, or a line of
 * stdin (see prompt.h). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "prompt.h"

static volatile sig_atomic_t tty_signal;

static void tty_signal_cb(int sig)
{
	tty_signal = sig;
}

ssize_t prompt__read_line(int fd, char *buf, size_t buflen)
{
	size_t n = 0;
	bool over = false;
	char c;

	if(buflen == 0) return -1;
	for(;;){
		ssize_t r = read(fd, &c, 1);
		if(r < 0){
			/* A signal caught by prompt__secret ends the read. */
			if(errno == EINTR && !tty_signal) continue;
			return -1;
		}
		if(r == 0 || c == '\n') break;
		if(n + 1 < buflen) buf[n++] = c;
		else over = true;
	}
	if(n > 0 && buf[n - 1] == '\r') n--;
	buf[n] = '\0';
	return over ? (ssize_t)buflen : (ssize_t)n;
}

ssize_t prompt__secret(const char *prompt, char *buf, size_t buflen)
{
	static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGTSTP};
	struct sigaction sa, old[sizeof(sigs) / sizeof(sigs[0])];
	struct termios saved, quiet;
	ssize_t n;
	size_t i;
	bool restore;
	int fd;

	fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
	if(fd < 0) return PROMPT_NO_TTY;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = tty_signal_cb;   /* no SA_RESTART: read() returns EINTR */
	sigemptyset(&sa.sa_mask);
	tty_signal = 0;
	for(i=0; i<sizeof(sigs) / sizeof(sigs[0]); i++) sigaction(sigs[i], &sa, &old[i]);

	/* Echo off before the prompt shows, so nothing typed after it is
	 * echoed or thrown away; line mode, whatever the terminal was in. */
	restore = (tcgetattr(fd, &saved) == 0);
	if(restore){
		quiet = saved;
		quiet.c_lflag &= (tcflag_t)~(ECHO | ECHOE | ECHOK | ECHONL);
		quiet.c_lflag |= ICANON;
		restore = tcsetattr(fd, TCSAFLUSH, &quiet) == 0;
	}
	if(write(fd, prompt, strlen(prompt)) < 0) n = -1;
	else n = prompt__read_line(fd, buf, buflen);
	if(restore) tcsetattr(fd, TCSAFLUSH, &saved);
	if(write(fd, "\n", 1) < 0) n = -1;
	close(fd);

	for(i=0; i<sizeof(sigs) / sizeof(sigs[0]); i++) sigaction(sigs[i], &old[i], NULL);
	if(tty_signal){
		explicit_bzero(buf, buflen);
		raise(tty_signal);
		tty_signal = 0;
		return -1;
	}
	return n;
}
