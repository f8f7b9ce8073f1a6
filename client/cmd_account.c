/* cmd_account.c - my own data and account (docs/PROTOCOL.md, "Your data:
 * export and delete_account"): export, delete-account. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "prompt.h"
#include "session.h"
#include "token.h"

/* The lists of an export answer, appended page after page. */
static const char *const export_lists[] = {"rooms", "contacts", "blocks", "messages"};
#define NLISTS (sizeof(export_lists) / sizeof(export_lists[0]))
/* Bound on the pages of one export, beside the check that each moves on. */
#define EXPORT_MAX_PAGES 10000000

/* Say why a silent session__rpc failed with rc; returns rc. */
static int rpc_failed(struct session *s, int rc)
{
	util__error("%s", s->rpc_error[0] ? s->rpc_error : rc == EXIT_TIMEOUT
			? "no answer from the archiver (is it running?)"
			: "connection to the broker lost before the archiver answered");
	return rc;
}

/* Add the page resp (borrowed) to doc: the account's members as they are,
 * each list's part after what doc has. *last: the largest seq so far;
 * *n: the messages of the page. 0, or -1 if out of memory. */
static int merge_page(json_t *doc, json_t *resp, json_int_t *last, size_t *n)
{
	static const char *const whole[] = {"account", "privacy", "devices"};
	json_t *part, *have, *m;
	size_t i, k;

	for(i = 0; i < sizeof(whole) / sizeof(whole[0]); i++){
		json_t *v = json_object_get(resp, whole[i]);
		if(v && json_object_set(doc, whole[i], v)) return -1;
	}
	*n = json_array_size(json_object_get(resp, "messages"));
	for(i = 0; i < NLISTS; i++){
		part = json_object_get(resp, export_lists[i]);
		if(!json_is_array(part)) continue;
		have = json_object_get(doc, export_lists[i]);
		if(have == NULL){
			if(json_object_set_new(doc, export_lists[i], json_array())) return -1;
			have = json_object_get(doc, export_lists[i]);
		}
		if(json_array_extend(have, part)) return -1;
	}
	json_array_foreach(json_object_get(resp, "messages"), k, m){
		json_int_t seq = json_integer_value(json_object_get(m, "seq"));
		if(seq > *last) *last = seq;
	}
	return 0;
}

/* Replace the cut body of message m (borrowed) by the whole, asked part by
 * part with `get`. A message the archiver will not give (a room I left)
 * keeps its beginning and its "truncated" mark. EXIT_OK or an exit code
 * (said). */
static int whole_body(struct session *s, json_t *m)
{
	json_int_t seq = json_integer_value(json_object_get(m, "seq")), offset = 0;
	json_t *req, *resp = NULL, *part;
	char *body = NULL, *p;
	size_t len = 0;
	int rc = EXIT_OK;

	for(;;){
		req = json_pack("{s:s, s:I, s:I}", "op", "get", "seq", seq, "offset", offset);
		json_decref(resp);
		resp = NULL;
		rc = req ? session__rpc(s, req, &resp) : EXIT_FAILED;
		json_decref(req);
		if(rc == EXIT_FAILED && !strcmp(s->rpc_code, "not_found")) rc = EXIT_OK;
		else if(rc) rc = rpc_failed(s, rc);
		if(rc || resp == NULL) break;
		part = json_object_get(resp, "body");
		p = json_is_string(part) ? realloc(body, len + json_string_length(part) + 1) : NULL;
		if(p == NULL){
			util__error("out of memory, or an answer to get without a body");
			rc = EXIT_FAILED;
			break;
		}
		body = p;
		memcpy(body + len, json_string_value(part), json_string_length(part));
		len += json_string_length(part);
		if(!json_is_true(json_object_get(resp, "more"))) break;
		offset = json_integer_value(json_object_get(resp, "next"));
	}
	if(rc == EXIT_OK && resp && json_object_set_new(m, "body", json_stringn(body, len)) == 0){
		json_object_del(m, "truncated");
		json_object_del(m, "body_bytes");
	}
	json_decref(resp);
	free(body);
	return rc;
}

/* Ask every page of export over s and assemble them into *doc (a new
 * reference). EXIT_OK or an exit code (said). */
static int export_all(struct session *s, json_t **doc)
{
	json_t *req = json_pack("{s:s}", "op", "export"), *resp, *next, *m;
	json_int_t last = 0;
	long pages;
	size_t n = 0, i;
	int rc = EXIT_OK;

	*doc = json_object();
	if(req == NULL || *doc == NULL){
		json_decref(req);
		util__error("out of memory");
		return EXIT_FAILED;
	}
	s->silent = s->quiet = true;
	for(pages = 0; rc == EXIT_OK; pages++){
		bool more, stuck, messages_only = json_object_get(req, "after") != NULL;

		resp = NULL;
		if((rc = session__rpc(s, req, &resp)) != EXIT_OK){
			rc = rpc_failed(s, rc);
			break;
		}
		if(merge_page(*doc, resp, &last, &n)){
			util__error("out of memory");
			rc = EXIT_FAILED;
		}
		more = json_is_true(json_object_get(resp, "more"));
		next = json_object_get(resp, "lists_next");
		/* Each page moves on: a list further, or messages. */
		stuck = (messages_only && n == 0) || (next && json_equal(next, json_object_get(req, "lists_from")));
		json_decref(req);
		if(next) req = json_pack("{s:s, s:O}", "op", "export", "lists_from", next);
		else req = json_pack("{s:s, s:I}", "op", "export", "after", last);
		json_decref(resp);
		if(!more || rc) break;
		if(req == NULL || stuck || pages >= EXPORT_MAX_PAGES){
			util__error(req ? "the archiver's export pages do not advance" : "out of memory");
			rc = EXIT_FAILED;
		}
	}
	json_decref(req);
	json_array_foreach(json_object_get(*doc, "messages"), i, m){
		if(rc == EXIT_OK && json_is_true(json_object_get(m, "truncated"))) rc = whole_body(s, m);
	}
	s->silent = s->quiet = false;
	if(rc != EXIT_OK){
		json_decref(*doc);
		*doc = NULL;
	}
	return rc;
}

/* Write doc to path, a file only I may read (0600, made so if it was
 * not). EXIT_OK or EXIT_FAILED (said). */
static int write_private(const char *path, json_t *doc)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);

	if(fd < 0 || fchmod(fd, 0600) != 0 || json_dumpfd(doc, fd, JSON_INDENT(2)) != 0
			|| write(fd, "\n", 1) != 1){
		util__error("cannot write %s: %s", path, strerror(errno));
		if(fd >= 0) close(fd);
		return EXIT_FAILED;
	}
	if(close(fd) != 0){
		util__error("cannot write %s: %s", path, strerror(errno));
		return EXIT_FAILED;
	}
	return EXIT_OK;
}

int cmd_export__run(struct options *opt, const struct cmd_args *a)
{
	const char *output = cmdline__value(&a->vals, "output");
	struct session s;
	json_t *doc = NULL;
	int rc;

	if(output && output[0] == '\0'){
		util__error("--output: expected a file name");
		return cmd__usage("export");
	}
	if((rc = options__need_user(opt))) return rc;
	if((rc = session__init(&s, opt, SESSION_ONESHOT)) == EXIT_OK
			&& (rc = session__connect(&s)) == EXIT_OK){
		rc = export_all(&s, &doc);
	}
	session__cleanup(&s);
	if(rc) return rc;
	if(output){
		rc = write_private(output, doc);
		if(rc == EXIT_OK){
			fprintf(stderr, "exported %zu messages of %s to %s\n",
					json_array_size(json_object_get(doc, "messages")), opt->user, output);
		}
	}else if(json_dumpf(doc, stdout, JSON_INDENT(2)) != 0 || fputc('\n', stdout) == EOF
			|| fflush(stdout) != 0){
		util__error("cannot write the export: %s", strerror(errno));
		rc = EXIT_FAILED;
	}
	json_decref(doc);
	return rc;
}

/* ---- delete-account ---- */

/* Ask on the terminal to type the account's name: EXIT_OK if it was,
 * EXIT_FAILED (said) if not, EXIT_USAGE (said) if there is no terminal. */
static int confirm(const struct options *opt, bool erase)
{
	char line[NAME_MAX_LEN + 2];
	int fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
	ssize_t n;

	if(fd < 0){
		util__error("no terminal to confirm on: give --yes to delete %s", opt->user);
		return EXIT_USAGE;
	}
	dprintf(fd, "This deletes the account %s for good%s: its rooms, contacts and device "
			"tokens go, and nobody may take the name for 30 days.\n"
			"Type the account name to confirm: ", opt->user,
			erase ? ", and erases every message it sent or received" : "");
	n = prompt__read_line(fd, line, sizeof(line));
	close(fd);
	if(n < 0 || (size_t)n >= sizeof(line) || strcmp(line, opt->user) != 0){
		util__error("not confirmed: nothing was deleted");
		return EXIT_FAILED;
	}
	return EXIT_OK;
}

static void sleep_ms(int64_t ms)
{
	struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* After the connection that asked closed without an answer: is the
 * account gone? A login with the same password is refused from the moment
 * the broker closes the account's connections, and login_status tells a
 * refusal from a throttle. EXIT_OK with *gone, or an exit code. */
static int probe_gone(struct options *opt, bool *gone)
{
	struct session p;
	json_t *st;
	const char *status;
	int rc, tries;

	*gone = false;
	for(tries = 0; tries < 3; tries++){
		json_int_t wait;

		rc = session__init(&p, opt, SESSION_ONESHOT);
		p.silent = p.no_fallback = true;
		if(rc == EXIT_OK) rc = session__connect(&p);
		session__cleanup(&p);
		if(rc != EXIT_AUTH) return rc;      /* EXIT_OK: it is still there */
		st = login__status(opt, opt->user);
		status = json_string_value(json_object_get(st, "status"));
		*gone = status && !strcmp(status, "refused");
		wait = json_integer_value(json_object_get(st, "retry_ms"));
		json_decref(st);
		if(*gone) return EXIT_OK;
		if(status == NULL || strcmp(status, "throttled") != 0 || wait > opt->timeout_s * 1000LL) break;
		sleep_ms(wait);
	}
	return EXIT_AUTH;
}

/* Send delete_account over a one-shot session: EXIT_OK once it is done
 * (answered, or the rule of the contract), else an exit code (said). */
static int delete_once(struct options *opt, bool erase)
{
	struct session s;
	json_t *req, *resp = NULL;
	bool gone = false;
	int rc, tries = 0;

	req = json_pack("{s:s, s:s, s:b}", "op", "delete_account", "password", opt->password, "erase", erase);
	if(req == NULL){
		util__error("out of memory");
		return EXIT_FAILED;
	}
	if((rc = session__init(&s, opt, SESSION_ONESHOT)) == EXIT_OK
			&& (rc = session__connect(&s)) == EXIT_OK){
		s.silent = s.quiet = true;
		rc = session__rpc(&s, req, &resp);
		/* The password was checked lately (a login asking for tokens): it
		 * is looked at again after retry_ms, within --timeout. */
		while(rc == EXIT_FAILED && !strcmp(s.rpc_code, "rate_limited") && tries++ < 3
				&& s.rpc_retry_ms <= s.opt->timeout_s * 1000LL){
			sleep_ms(s.rpc_retry_ms);
			rc = session__rpc(&s, req, &resp);
		}
		s.silent = false;
		if(rc == EXIT_UNREACH){
			/* Closed without an answer: the broker closes it as the
			 * account goes, or the network did. Ask the broker which. */
			rc = probe_gone(opt, &gone);
			if(rc == EXIT_OK && !gone) rc = EXIT_UNREACH;
			if(rc != EXIT_OK){
				util__error("the connection closed before the archiver answered, and the "
						"account %s: run delete-account again", rc == EXIT_UNREACH
						? "still exists" : "may still exist");
			}
		}else if(rc != EXIT_OK){
			rpc_failed(&s, rc);
		}
	}
	session__cleanup(&s);
	json_object_del(req, "password");
	json_decref(req);
	json_decref(resp);
	return rc;
}

int cmd_delete_account__run(struct options *opt, const struct cmd_args *a)
{
	char dev[DEVICE_MAX_LEN + 1];
	bool erase = cmdline__given(&a->vals, "erase"), yes = cmdline__given(&a->vals, "yes");
	int rc;

	if((rc = options__need_user(opt))) return rc;
	if(!yes && (rc = confirm(opt, erase))) return rc;
	/* The password, never a stored token: the request needs it, and the
	 * probe after it must not take a refused token for a deleted account. */
	if((rc = options__password(opt))) return rc;
	opt->prompted = false;  /* no device tokens for an account that goes */
	if((rc = delete_once(opt, erase))) return rc;
	token__forget(opt, opt->device);
	token__oneshot_device(opt->device, dev);
	token__forget(opt, dev);
	if(opt->json) printf("{\"deleted\":\"%s\",\"erased\":%s}\n", opt->user, erase ? "true" : "false");
	else printf("account %s deleted%s\n", opt->user, erase ? ", its messages erased" : "");
	return EXIT_OK;
}
