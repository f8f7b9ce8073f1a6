/* prompt.h - reading a secret: a prompt without echo on the terminal
 * (/dev/tty), or one line of stdin. The one prompt of the chat client and
 * the operators' CLI. */
#ifndef MQCHAT_PROMPT_H
#define MQCHAT_PROMPT_H

#include <stddef.h>
#include <sys/types.h>

/* prompt__secret's answer when there is no terminal to ask on. */
#define PROMPT_NO_TTY (-2)

/* Read one line from fd into buf (NUL-terminated, without the "\n" or
 * "\r\n"), a byte at a time so nothing after the line is consumed.
 * Returns its length (0 for an empty line or end of input), buflen if it
 * did not fit (the rest of the line is consumed and dropped), or -1 on a
 * read error. */
ssize_t prompt__read_line(int fd, char *buf, size_t buflen);

/* Show prompt on /dev/tty with echo off and read one line into buf, as
 * prompt__read_line. The terminal is restored even if a signal
 * (SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGTSTP) interrupts the read: then
 * buf is wiped, the signal is raised again once the program's own
 * handlers are back, and -1 is returned. PROMPT_NO_TTY if there is no
 * terminal (the caller says which other source to use). */
ssize_t prompt__secret(const char *prompt, char *buf, size_t buflen);

#endif
