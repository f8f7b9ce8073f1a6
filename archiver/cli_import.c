/* cli_import.c - `mqchat-archiver import mosquitto-passwd|dynsec|csv FILE
 * [--dry-run]`: bring accounts over from Mosquitto, or many at once from a
 * table.
 *
 *   mosquitto-passwd  a password_file (mosquitto_passwd): `name:$6$...` and
 *                     `name:$7$...` lines; '#' comments and blank lines
 *   dynsec            the dynamic-security plugin's JSON: its "clients"
 *                     with username, password, salt and iterations
 *   csv               name,password[,display_name] (RFC 4180; a header
 *                     line, a UTF-8 BOM and CRLF are fine); FILE `-`: stdin
 *
 * Mosquitto's hashes are stored as they are (pwhash.h: verified at login,
 * replaced by ours after the first one, plugin/loader.c), so people keep
 * their passwords; a CSV's passwords are hashed here (pwhash__make). Every
 * account is a person's (kind user) whose nick is the name, the CSV's
 * display_name or the dynsec textname; the rules of `user add` apply
 * (names.h, the retired names of userdb__name_free, the nick rule of
 * nick.h, and for a CSV the password rules of cli__read_password).
 *
 * All or nothing per file: the file is read and checked whole, then the
 * passwords hashed (outside any transaction: 2 ms each would hold the
 * store's write lock for seconds), then every account inserted in one
 * write transaction that checks again what the store may have changed. A
 * file that cannot be read or parsed, or a store that fails, imports
 * nothing. A record that breaks a rule is skipped and reported, the rest
 * imported.
 *
 * The report, on stdout: one line per record not imported,
 * `FILE:WHERE: NAME: why` (WHERE a line number, or clients[i] for dynsec),
 * notes, then `imported N, skipped M`. Exit 0 if nothing was skipped, 1 if
 * something was (or the file or the store failed: "Error: ..." and nothing
 * imported), 2 usage, 6 no auth.db. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "cli.h"
#include "devtoken.h"
#include "err.h"
#include "names.h"
#include "pwhash.h"
#include "userdb.h"

/* uthash without exiting on a failed allocation: the set says so. */
static bool set_oom;
#undef uthash_nonfatal_oom
#define uthash_nonfatal_oom(obj) do{ set_oom = true; }while(0)
#include <uthash.h>

/* The largest file read (a million CSV lines is ~50 MB). */
#define IMPORT_MAX_BYTES (256u << 20)
/* Progress on a terminal from this many passwords to hash. */
#define IMPORT_PROGRESS_MIN 200

enum import_format { FMT_PASSWD, FMT_DYNSEC, FMT_CSV };

/* One account of the file. */
struct rec {
	long where;                     /* line (passwd, csv), index in "clients" (dynsec) */
	char *name;                     /* as in the file, NUL-terminated copy */
	size_t namelen;                 /* bytes before the copy's NUL (a NUL inside: invalid) */
	char *nick;                     /* NULL: the name */
	bool nick_optional;             /* dynsec textname: the name if it cannot be the nick */
	const char *password;           /* csv: in the file's buffer until hashed */
	size_t pwlen;
	char hash[PWHASH_STR_LEN];      /* the stored form */
	bool enabled;
	char *skip;                     /* why it is not imported; NULL: it is */
	char *note;                     /* a remark on one that is */
};

struct import {
	struct cli *cli;
	enum import_format fmt;
	const char *file;               /* the path, "stdin" for - */
	bool dry_run;
	char *buf;                      /* the whole file; wiped before it is freed */
	size_t len;
	struct rec *recs;
	size_t n, cap;
	char *file_note;                /* dynsec: what is not imported */
};

/* A set of texts, each with the account it came from. */
struct key {
	UT_hash_handle hh;
	char account[NAME_MAX_LEN + 1];
	long where;                     /* duplicates: the first record's */
	bool of_nick;                   /* a nick's key (false: a name's) */
	char text[];
};

static void set_free(struct key **set)
{
	struct key *k, *tmp;

	HASH_ITER(hh, *set, k, tmp){
		HASH_DEL(*set, k);
		free(k);
	}
}

/* The entry of text, or NULL. */
static struct key *set_find(struct key *set, const char *text)
{
	struct key *k = NULL;

	HASH_FIND_STR(set, text, k);
	return k;
}

/* Add text (if not there). MQC_OK or MQC_ERR_NOMEM. */
static int set_add(struct key **set, const char *text, const char *account, long where, bool of_nick)
{
	size_t len = strlen(text);
	struct key *k;

	if(set_find(*set, text) != NULL) return MQC_OK;
	k = calloc(1, sizeof(*k) + len + 1);
	if(k == NULL) return MQC_ERR_NOMEM;
	snprintf(k->account, sizeof(k->account), "%s", account);
	k->where = where;
	k->of_nick = of_nick;
	memcpy(k->text, text, len + 1);
	set_oom = false;
	HASH_ADD(hh, *set, text, len, k);
	if(set_oom){
		free(k);
		return MQC_ERR_NOMEM;
	}
	return MQC_OK;
}

/* Set r's reason (the first one given counts). MQC_OK or MQC_ERR_NOMEM. */
static int skip(struct rec *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int skip(struct rec *r, const char *fmt, ...)
{
	va_list ap;
	int n;

	if(r->skip != NULL) return MQC_OK;
	va_start(ap, fmt);
	n = vasprintf(&r->skip, fmt, ap);
	va_end(ap);
	if(n < 0){
		r->skip = NULL;
		return MQC_ERR_NOMEM;
	}
	return MQC_OK;
}

/* A new record at where, name[0..len) copied. NULL: out of memory. */
static struct rec *rec_new(struct import *imp, long where, const char *name, size_t len)
{
	struct rec *r;

	if(imp->n == imp->cap){
		size_t cap = imp->cap ? imp->cap * 2 : 64;
		struct rec *recs = realloc(imp->recs, cap * sizeof(*recs));

		if(recs == NULL) return NULL;
		imp->recs = recs;
		imp->cap = cap;
	}
	r = &imp->recs[imp->n];
	memset(r, 0, sizeof(*r));
	r->where = where;
	r->enabled = true;
	r->name = malloc(len + 1);
	if(r->name == NULL) return NULL;
	memcpy(r->name, name, len);
	r->name[len] = '\0';
	r->namelen = len;
	imp->n++;
	return r;
}

static void import_free(struct import *imp)
{
	size_t i;

	for(i=0; i<imp->n; i++){
		struct rec *r = &imp->recs[i];

		free(r->name);
		free(r->nick);
		free(r->skip);
		free(r->note);
		OPENSSL_cleanse(r->hash, sizeof(r->hash));
	}
	free(imp->recs);
	free(imp->file_note);
	if(imp->buf != NULL) OPENSSL_cleanse(imp->buf, imp->len);
	free(imp->buf);
}

/* ---- reading the file ---- */

/* The whole of path (or stdin for "-") into imp->buf. CLI_OK or an exit
 * status (error printed). */
static int read_file(struct import *imp, const char *path)
{
	int fd = strcmp(path, "-") == 0 ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
	size_t cap = 0;
	ssize_t n;
	char *b;

	if(fd < 0) return cli__error(CLI_ERR_RUNTIME, "cannot read %s: %s", path, strerror(errno));
	for(;;){
		if(imp->len == cap){
			if(cap >= IMPORT_MAX_BYTES){
				n = -2;
				break;
			}
			cap = cap ? cap * 2 : 65536;
			b = malloc(cap + 1);
			if(b == NULL){
				n = -3;
				break;
			}
			/* Copied by hand, so no copy of a password is left behind. */
			if(imp->buf != NULL){
				memcpy(b, imp->buf, imp->len);
				OPENSSL_cleanse(imp->buf, imp->len);
			}
			free(imp->buf);
			imp->buf = b;
		}
		n = read(fd, imp->buf + imp->len, cap - imp->len);
		if(n < 0 && errno == EINTR) continue;
		if(n <= 0) break;
		imp->len += (size_t)n;
	}
	if(fd != STDIN_FILENO) close(fd);
	if(n == -1) return cli__error(CLI_ERR_RUNTIME, "cannot read %s: %s", path, strerror(errno));
	if(n == -2) return cli__error(CLI_ERR_RUNTIME, "%s is larger than %u MiB", path, IMPORT_MAX_BYTES >> 20);
	if(n == -3) return cli__error(CLI_ERR_RUNTIME, "out of memory");
	if(imp->buf == NULL){
		imp->buf = malloc(1);
		if(imp->buf == NULL) return cli__error(CLI_ERR_RUNTIME, "out of memory");
	}
	imp->buf[imp->len] = '\0';
	return CLI_OK;
}

/* The whole file is refused: nothing is imported. */
static int file_error(const struct import *imp, long line, const char *why)
{
	if(line > 0) return cli__error(CLI_ERR_RUNTIME, "%s:%ld: %s; nothing imported", imp->file, line, why);
	return cli__error(CLI_ERR_RUNTIME, "%s: %s; nothing imported", imp->file, why);
}

static int nomem(void)
{
	return cli__error(CLI_ERR_RUNTIME, "out of memory");
}

/* ---- mosquitto-passwd ---- */

static bool blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

/* Why the stored form h[0..len) from Mosquitto is not taken, or NULL if
 * it is (then it is in out, PWHASH_STR_LEN bytes). */
static const char *hash_problem(const char *h, size_t len, char *out, char *why, size_t whylen)
{
	char q[40], head[24];
	size_t plen;

	if(len == 0) return "no password hash";
	if(len < PWHASH_STR_LEN && memchr(h, '\0', len) == NULL){
		memcpy(out, h, len);
		out[len] = '\0';
		if(pwhash__iterations(out) != 0 && pwhash__is_legacy(out)) return NULL;
	}
	out[0] = '\0';
	if(len >= 3 && (memcmp(h, "$6$", 3) == 0 || memcmp(h, "$7$", 3) == 0)){
		snprintf(why, whylen, "malformed %.3s password hash (Mosquitto 2.0 would not read it either)", h);
		return why;
	}
	if(h[0] == '$'){
		/* Name the form: "$argon2id$", "$pbkdf2-sha512$" (ours: not in a Mosquitto file). */
		for(plen = 1; plen < len && plen < sizeof(head) - 1 && h[plen] != '$'; plen++){}
		if(plen < len && h[plen] == '$') plen++;
		memcpy(head, h, plen);
		head[plen] = '\0';
		snprintf(why, whylen, "unsupported password hash %s...: mqchat reads Mosquitto's $6$ and $7$",
				cli__quote(head, q, sizeof(q)));
		return why;
	}
	return "not a password hash (a plain-text password file: hash it with"
		" `mosquitto_passwd -U FILE` first, or import it as CSV)";
}

static int parse_passwd(struct import *imp)
{
	char *p = imp->buf, *end = imp->buf + imp->len, *eol, *colon, *a, *b;
	char why[160];
	const char *problem;
	struct rec *r;
	long line = 0;

	for(; p < end; p = eol + 1){
		line++;
		eol = memchr(p, '\n', (size_t)(end - p));
		if(eol == NULL) eol = end;
		a = p;
		b = eol;
		while(a < b && blank(*a)) a++;
		while(b > a && blank(b[-1])) b--;
		if(a == b || *a == '#') continue;
		colon = memchr(a, ':', (size_t)(b - a));
		if(colon == NULL){
			r = rec_new(imp, line, a, (size_t)(b - a));
			if(r == NULL || skip(r, "not a name:hash line")) return nomem();
			continue;
		}
		/* Mosquitto trims blanks around both parts too. */
		{
			char *ne = colon, *h = colon + 1;

			while(ne > a && blank(ne[-1])) ne--;
			while(h < b && blank(*h)) h++;
			r = rec_new(imp, line, a, (size_t)(ne - a));
			if(r == NULL) return nomem();
			problem = hash_problem(h, (size_t)(b - h), r->hash, why, sizeof(why));
			if(problem != NULL && skip(r, "%s", problem)) return nomem();
		}
	}
	return CLI_OK;
}

/* ---- csv ---- */

#define CSV_MAX_FIELDS 3

struct field {
	const char *s;
	size_t len;
};

/* Case-insensitive f == word. */
static bool field_is(const struct field *f, const char *word)
{
	return f->len == strlen(word) && strncasecmp(f->s, word, f->len) == 0;
}

/* The password rules of cli__read_password (cli_util.c), as reasons. */
static const char *password_problem(const char *pw, size_t len, char *why, size_t whylen)
{
	if(len == 0) return "no password";
	if(memchr(pw, '\0', len) != NULL) return "the password holds a NUL byte";
	if(len > PWHASH_MAX_PASSWORD){
		snprintf(why, whylen, "password too long (at most %d bytes)", PWHASH_MAX_PASSWORD);
		return why;
	}
	if(len < PWHASH_MIN_PASSWORD){
		snprintf(why, whylen, "password too short (at least %d bytes)", PWHASH_MIN_PASSWORD);
		return why;
	}
	/* The plugin takes a password of this form for a token. */
	if(devtoken__is_token(pw, len)){
		snprintf(why, whylen, "a password may not have the form of a device token"
				" (%s and 43 characters of A-Z a-z 0-9 _ -)", DEVTOKEN_PREFIX);
		return why;
	}
	return NULL;
}

/* One CSV record into a struct rec (a header is not one). */
static int csv_record(struct import *imp, long line, const struct field *f, int nf, bool first)
{
	char why[200], q[80];
	const char *problem;
	struct rec *r;

	/* A header: name,password[,display_name] (also "nick"). */
	if(first && nf >= 2 && nf <= 3 && field_is(&f[0], "name") && field_is(&f[1], "password")
			&& (nf == 2 || field_is(&f[2], "display_name") || field_is(&f[2], "nick"))){
		return CLI_OK;
	}
	r = rec_new(imp, line, f[0].s, f[0].len);
	if(r == NULL) return nomem();
	if(nf < 2 || nf > CSV_MAX_FIELDS){
		return skip(r, "expected name,password[,display_name]: %s%d field%s", nf > CSV_MAX_FIELDS ? "more than " : "",
				nf > CSV_MAX_FIELDS ? CSV_MAX_FIELDS : nf, nf == 1 ? "" : "s") ? nomem() : CLI_OK;
	}
	problem = password_problem(f[1].s, f[1].len, why, sizeof(why));
	if(problem != NULL) return skip(r, "%s", problem) ? nomem() : CLI_OK;
	r->password = f[1].s;
	r->pwlen = f[1].len;
	if(nf == 3 && f[2].len > 0){
		r->nick = strndup(f[2].s, f[2].len);
		if(r->nick == NULL) return nomem();
		if(strlen(r->nick) != f[2].len || !names__nick_valid(f[2].s, f[2].len, why, sizeof(why))){
			if(strlen(r->nick) != f[2].len) snprintf(why, sizeof(why), "it holds a NUL byte");
			return skip(r, "invalid display name '%s': %s", cli__quote(r->nick, q, sizeof(q)), why)
				? nomem() : CLI_OK;
		}
	}
	return CLI_OK;
}

/* RFC 4180, unquoting in place (a field never grows). A malformed file
 * (an unterminated quote, a quote inside an unquoted field, text after a
 * closing quote) is refused whole: what follows could not be trusted. */
static int parse_csv(struct import *imp)
{
	char *p = imp->buf, *end = imp->buf + imp->len, *w;
	struct field f[CSV_MAX_FIELDS + 1];
	long line = 1, rec_line;
	bool first = true;
	int nf, rc;

	if(imp->len >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0) p += 3;
	while(p < end){
		/* A blank line is no record. */
		if(*p == '\n' || (*p == '\r' && (p + 1 == end || p[1] == '\n'))){
			p += *p == '\r' && p + 1 < end ? 2 : 1;
			line++;
			continue;
		}
		rec_line = line;
		nf = 0;
		for(;;){
			char *start = p;

			w = p;
			if(p < end && *p == '"'){
				p++;
				for(;;){
					if(p >= end) return file_error(imp, rec_line, "a quoted field is not closed");
					if(*p == '"'){
						if(p + 1 < end && p[1] == '"'){
							*w++ = '"';
							p += 2;
							continue;
						}
						p++;
						break;
					}
					if(*p == '\n') line++;
					*w++ = *p++;
				}
				if(p < end && *p != ',' && *p != '\n' && !(*p == '\r' && (p + 1 == end || p[1] == '\n'))){
					return file_error(imp, line, "text after a closing quote (RFC 4180: a quoted"
							" field ends at a comma or the end of the line)");
				}
			}else{
				while(p < end && *p != ',' && *p != '\n' && !(*p == '\r' && (p + 1 == end || p[1] == '\n'))){
					if(*p == '"'){
						return file_error(imp, line, "a quote inside an unquoted field (RFC 4180:"
								" quote the whole field and double the quote)");
					}
					p++;
				}
				w = p;
			}
			if(nf <= CSV_MAX_FIELDS){
				f[nf].s = start;
				f[nf].len = (size_t)(w - start);
			}
			nf++;
			if(p < end && *p == ','){
				p++;
				continue;
			}
			if(p < end && *p == '\r') p++;
			if(p < end && *p == '\n'){
				p++;
				line++;
			}
			break;
		}
		rc = csv_record(imp, rec_line, f, nf, first);
		if(rc != CLI_OK) return rc;
		first = false;
	}
	return CLI_OK;
}

/* ---- dynsec ---- */

/* Member key of obj (borrowed), its case ignored as Mosquitto's cJSON
 * lookups ignore it: `mosquitto_ctrl dynsec init` writes "textName" and
 * the plugin reads "textname". The exact key first. */
static json_t *get(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);
	const char *k;

	if(v != NULL || !json_is_object(obj)) return v;
	json_object_foreach(obj, k, v){
		if(strcasecmp(k, key) == 0) return v;
	}
	return NULL;
}

/* What the dynsec file holds that is not imported, as a note (or none). */
static int dynsec_note(struct import *imp, json_t *root, size_t with_roles, size_t with_clientid)
{
	json_t *roles = get(root, "roles"), *groups = get(root, "groups");
	size_t nroles = json_is_array(roles) ? json_array_size(roles) : 0;
	size_t ngroups = json_is_array(groups) ? json_array_size(groups) : 0;
	bool acl = get(root, "defaultACLAccess") != NULL;
	char text[512];
	size_t n = 0;

	if(nroles == 0 && ngroups == 0 && with_roles == 0 && with_clientid == 0 && !acl) return CLI_OK;
#define ADD(...) n += (size_t)snprintf(text + n, n < sizeof(text) ? sizeof(text) - n : 0, __VA_ARGS__)
	ADD("not imported:");
	if(nroles) ADD(" %zu role%s,", nroles, nroles == 1 ? "" : "s");
	if(ngroups) ADD(" %zu group%s,", ngroups, ngroups == 1 ? "" : "s");
	if(with_roles) ADD(" the roles of %zu client%s,", with_roles, with_roles == 1 ? "" : "s");
	if(with_clientid) ADD(" the fixed client id of %zu client%s,", with_clientid, with_clientid == 1 ? "" : "s");
	if(acl) ADD(" defaultACLAccess,");
#undef ADD
	if(n >= sizeof(text)) n = sizeof(text) - 1;
	text[n - 1] = '\0';       /* the last comma */
	if(asprintf(&imp->file_note, "%s (mqchat's access rules are its chat contract, docs/PROTOCOL.md:"
				" make rooms and members with `mqchat-archiver room`)", text) < 0){
		imp->file_note = NULL;
		return nomem();
	}
	return CLI_OK;
}

/* One client of the dynsec file into a struct rec. *roles, *clientid: counts. */
static int dynsec_client(struct import *imp, size_t i, json_t *c, size_t *roles, size_t *clientid)
{
	json_t *user = get(c, "username"), *pw, *salt, *it, *text, *jr;
	struct rec *r;
	char why[160], form[PWHASH_STR_LEN * 2];
	const char *problem;
	double iterations;
	int n;

	if(!json_is_object(c) || !json_is_string(user)){
		r = rec_new(imp, (long)i, "", 0);
		if(r == NULL) return nomem();
		return skip(r, json_is_object(c) ? "no username" : "not an object") ? nomem() : CLI_OK;
	}
	r = rec_new(imp, (long)i, json_string_value(user), json_string_length(user));
	if(r == NULL) return nomem();
	jr = get(c, "roles");
	if(json_is_array(jr) && json_array_size(jr) > 0) (*roles)++;
	if(get(c, "clientid") != NULL) (*clientid)++;
	if(json_is_true(get(c, "disabled"))) r->enabled = false;
	text = get(c, "textname");
	if(json_is_string(text) && json_string_length(text) > 0){
		r->nick = strndup(json_string_value(text), json_string_length(text));
		if(r->nick == NULL) return nomem();
		r->nick_optional = true;
	}
	pw = get(c, "password");
	salt = get(c, "salt");
	it = get(c, "iterations");
	if(pw == NULL && salt == NULL && it == NULL){
		return skip(r, "no password (this client cannot log in with one)") ? nomem() : CLI_OK;
	}
	if(pw == NULL || salt == NULL || it == NULL){
		return skip(r, "incomplete password: needs password, salt and iterations") ? nomem() : CLI_OK;
	}
	/* A number, as the plugin reads it (a whole one here). */
	iterations = json_number_value(it);
	if(!json_is_string(pw) || !json_is_string(salt) || !json_is_number(it)
			|| iterations < 1 || iterations > PWHASH_MAX_ITERATIONS || iterations != (double)(long long)iterations){
		return skip(r, "malformed password: password and salt must be base64 strings, iterations"
				" 1..%u", PWHASH_MAX_ITERATIONS) ? nomem() : CLI_OK;
	}
	/* The dynsec plugin's PBKDF2 is what $7$ says. */
	n = snprintf(form, sizeof(form), "$7$%lld$%s$%s", (long long)iterations,
			json_string_value(salt), json_string_value(pw));
	problem = n < 0 || (size_t)n >= sizeof(form) ? "too long"
		: hash_problem(form, (size_t)n, r->hash, why, sizeof(why));
	if(problem != NULL){
		return skip(r, "malformed password: the salt must be 12 bytes and the password 64, in"
				" base64") ? nomem() : CLI_OK;
	}
	return CLI_OK;
}

static int parse_dynsec(struct import *imp)
{
	json_error_t jerr;
	json_t *root, *clients, *c;
	size_t i, roles = 0, clientid = 0;
	char why[300];
	int rc = CLI_OK;

	root = json_loadb(imp->buf, imp->len, 0, &jerr);
	if(root == NULL){
		snprintf(why, sizeof(why), "not JSON: %s (column %d)", jerr.text, jerr.column);
		return file_error(imp, jerr.line, why);
	}
	if(!json_is_object(root)){
		json_decref(root);
		return file_error(imp, 0, "not a dynamic-security file: the top level is not an object");
	}
	clients = get(root, "clients");
	if(clients != NULL && !json_is_array(clients)){
		json_decref(root);
		return file_error(imp, 0, "not a dynamic-security file: \"clients\" is not an array");
	}
	json_array_foreach(clients, i, c){
		rc = dynsec_client(imp, i, c, &roles, &clientid);
		if(rc != CLI_OK) break;
	}
	if(rc == CLI_OK) rc = dynsec_note(imp, root, roles, clientid);
	json_decref(root);
	return rc;
}

/* ---- checks ---- */

/* What the file itself rules out: the name's grammar, a name given twice. */
static int check_file(struct import *imp)
{
	struct key *seen = NULL, *k;
	size_t i;
	int rc = MQC_OK;

	for(i=0; i<imp->n && rc == MQC_OK; i++){
		struct rec *r = &imp->recs[i];

		if(r->namelen == 0){
			rc = skip(r, "no username");
			continue;
		}
		if(!names__valid(r->name, r->namelen) || strlen(r->name) != r->namelen){
			rc = skip(r, "invalid name (1..%d of a-z 0-9 _ . -, starting with a letter or digit)",
					NAME_MAX_LEN);
			continue;
		}
		k = set_find(seen, r->name);
		if(k != NULL){
			rc = imp->fmt == FMT_DYNSEC ? skip(r, "duplicate of clients[%ld]", k->where)
				: skip(r, "duplicate of line %ld", k->where);
			continue;
		}
		rc = set_add(&seen, r->name, r->name, r->where, false);
	}
	set_free(&seen);
	return rc;
}

/* The look-alike keys of every account in the store (nick.h's rule). */
static int add_account_keys_cb(const struct userdb_user *u, void *arg)
{
	char key[NICK_MAX_LEN + 1];
	int rc;

	names__nick_key(u->name, strlen(u->name), key, sizeof(key));
	rc = key[0] ? set_add(arg, key, u->name, 0, false) : MQC_OK;
	names__nick_key(u->nick, strlen(u->nick), key, sizeof(key));
	if(rc == MQC_OK && key[0]) rc = set_add(arg, key, u->name, 0, true);
	return rc;
}

/* Does r's name or nick look like an account's in keys? Sets r's reason. */
static bool clashes(struct rec *r, struct key *keys, const char *name_key, const char *nick_key,
		const char *nick, int *rc)
{
	struct key *k;

	if((k = name_key[0] ? set_find(keys, name_key) : NULL) != NULL){
		*rc = skip(r, "the name '%s' looks like the %s of account '%s'", r->name,
				k->of_nick ? "nick" : "name", k->account);
		return true;
	}
	if((k = nick_key[0] ? set_find(keys, nick_key) : NULL) != NULL){
		char q[80];

		*rc = skip(r, "the nick '%s' looks like the %s of account '%s'", cli__quote(nick, q, sizeof(q)),
				k->of_nick ? "nick" : "name", k->account);
		return true;
	}
	return false;
}

/* The nick rule (nick.h) for the records not skipped, in file order: a
 * new account's name and nick may not look like any other account's, in
 * the store or imported before it. nick__check reads every account per
 * call (10,000 imports would read 10^8 rows); this reads them once into
 * a set of the same keys (names__nick_key). A dynsec textname that
 * cannot be the nick leaves the name as the nick, with a note. */
static int check_nicks(struct import *imp, struct userdb *udb)
{
	char name_key[NICK_MAX_LEN + 1], nick_key[NICK_MAX_LEN + 1], why[200], q[80];
	struct key *keys = NULL;
	size_t i;
	int rc = userdb__user_each(udb, add_account_keys_cb, &keys);

	for(i=0; i<imp->n && rc == MQC_OK; i++){
		struct rec *r = &imp->recs[i];
		const char *nick;
		bool clash;

		if(r->skip != NULL) continue;
		if(r->nick_optional && r->nick != NULL && !names__nick_valid(r->nick, strlen(r->nick), why, sizeof(why))){
			free(r->note);
			if(asprintf(&r->note, "textname '%s' is not a valid nick (%s): the nick is the name",
						cli__quote(r->nick, q, sizeof(q)), why) < 0){
				r->note = NULL;
			}
			free(r->nick);
			r->nick = NULL;
		}
		nick = r->nick ? r->nick : r->name;
		names__nick_key(r->name, r->namelen, name_key, sizeof(name_key));
		names__nick_key(nick, strlen(nick), nick_key, sizeof(nick_key));
		clash = clashes(r, keys, name_key, "", nick, &rc);
		if(!clash && r->nick_optional && r->nick != NULL && nick_key[0] && set_find(keys, nick_key)){
			struct key *k = set_find(keys, nick_key);

			free(r->note);
			if(asprintf(&r->note, "textname '%s' looks like the %s of account '%s': the nick is the name",
						cli__quote(r->nick, q, sizeof(q)), k->of_nick ? "nick" : "name", k->account) < 0){
				r->note = NULL;
			}
			free(r->nick);
			r->nick = NULL;
			nick = r->name;
			names__nick_key(nick, strlen(nick), nick_key, sizeof(nick_key));
		}
		if(!clash) clash = clashes(r, keys, "", nick_key, nick, &rc);
		if(clash || rc != MQC_OK) continue;
		if(name_key[0]) rc = set_add(&keys, name_key, r->name, r->where, false);
		if(rc == MQC_OK && nick_key[0]) rc = set_add(&keys, nick_key, r->name, r->where, true);
	}
	set_free(&keys);
	return rc;
}

/* What the store rules out, inside the caller's transaction: a name taken
 * or retired (userdb__name_free), a look-alike. MQC_OK or the store's
 * MQC_ERR_*. */
static int check_store(struct import *imp, struct userdb *udb)
{
	struct userdb_user u;
	char when[32], until[32];
	int64_t created, deleted;
	size_t i;
	int rc = MQC_OK;

	for(i=0; i<imp->n && rc == MQC_OK; i++){
		struct rec *r = &imp->recs[i];

		if(r->skip != NULL) continue;
		rc = userdb__user_get(udb, r->name, &u);
		if(rc == MQC_OK){
			rc = skip(r, "already exists");
			continue;
		}
		if(rc != MQC_ERR_NOTFOUND) break;
		rc = userdb__name_free(udb, r->name);
		if(rc != MQC_ERR_EXISTS) continue;
		rc = userdb__retired_get(udb, r->name, &created, &deleted);
		if(rc != MQC_OK) break;
		rc = skip(r, "the name of an account deleted on %s, free again on %s (`user add %s"
				" --restore` gives it back to the same person)", cli__fmt_time(deleted, when, sizeof(when)),
				cli__fmt_time(deleted + USERDB_RETIRE_MS, until, sizeof(until)), r->name);
	}
	return rc == MQC_OK ? check_nicks(imp, udb) : rc;
}

/* ---- hashing and writing ---- */

/* Hash the passwords of the CSV records still to import, wiping each. */
static int hash_passwords(struct import *imp)
{
	size_t i, todo = 0, done = 0;
	bool progress;
	int rc;

	for(i=0; i<imp->n; i++) todo += imp->recs[i].skip == NULL && imp->recs[i].password != NULL;
	progress = todo >= IMPORT_PROGRESS_MIN && isatty(STDERR_FILENO);
	for(i=0; i<imp->n; i++){
		struct rec *r = &imp->recs[i];

		if(r->skip != NULL || r->password == NULL) continue;
		rc = pwhash__make(r->password, r->pwlen, PWHASH_DEFAULT_ITERATIONS, r->hash, sizeof(r->hash));
		if(rc != MQC_OK) return cli__fail(rc, "hashing a password");
		r->password = NULL;
		if(progress && (++done % 100 == 0 || done == todo)){
			fprintf(stderr, "\rhashing passwords: %zu/%zu", done, todo);
			if(done == todo) fputc('\n', stderr);
		}
	}
	OPENSSL_cleanse(imp->buf, imp->len);
	return CLI_OK;
}

/* Check again under the write lock and insert every record still to
 * import; one transaction. MQC_OK or the store's MQC_ERR_* (then nothing
 * is imported). */
static int write_all(struct import *imp, struct userdb *udb)
{
	size_t i;
	int rc = userdb__begin_write(udb);

	if(rc == MQC_OK) rc = check_store(imp, udb);
	for(i=0; i<imp->n && rc == MQC_OK; i++){
		struct rec *r = &imp->recs[i];

		if(r->skip != NULL) continue;
		rc = userdb__user_add(udb, r->name, USER_KIND_USER, r->nick ? r->nick : r->name, r->hash);
		if(rc == MQC_OK && !r->enabled) rc = userdb__user_set_enabled(udb, r->name, false);
	}
	return cli__end_write(udb, rc);
}

/* ---- the report ---- */

static int report(const struct import *imp)
{
	char q[80], where[40];
	size_t i, imported = 0, disabled = 0, skipped = 0;

	for(i=0; i<imp->n; i++){
		const struct rec *r = &imp->recs[i];

		if(imp->fmt == FMT_DYNSEC) snprintf(where, sizeof(where), "clients[%ld]", r->where);
		else snprintf(where, sizeof(where), "%ld", r->where);
		if(r->skip != NULL){
			skipped++;
			printf("%s:%s: %s: %s\n", imp->file, where, r->name[0] ? cli__quote(r->name, q, sizeof(q))
					: "(no name)", r->skip);
			continue;
		}
		imported++;
		disabled += !r->enabled;
		if(r->note != NULL) printf("%s:%s: %s: note: %s\n", imp->file, where, r->name, r->note);
	}
	if(imp->file_note != NULL) printf("%s: %s\n", imp->file, imp->file_note);
	printf("%s %zu", imp->dry_run ? "would import" : "imported", imported);
	if(disabled > 0) printf(" (%zu disabled)", disabled);
	printf(", %s %zu%s\n", imp->dry_run ? "skip" : "skipped", skipped,
			imp->dry_run ? " (dry run: nothing changed)" : "");
	return skipped > 0 ? CLI_ERR_RUNTIME : CLI_OK;
}

/* ---- the commands ---- */

static int import_file(struct cli *cli, enum import_format fmt)
{
	struct import imp = {.cli = cli, .fmt = fmt, .dry_run = cmdline__given(&cli->opt, "dry-run")};
	struct userdb *udb = NULL;
	const char *path = cli->args[0];
	int rc;

	imp.file = strcmp(path, "-") == 0 ? "stdin" : path;
	rc = read_file(&imp, path);
	if(rc == CLI_OK){
		rc = fmt == FMT_PASSWD ? parse_passwd(&imp) : fmt == FMT_DYNSEC ? parse_dynsec(&imp)
			: parse_csv(&imp);
	}
	if(rc == CLI_OK && check_file(&imp) != MQC_OK) rc = nomem();
	if(rc == CLI_OK) rc = cli__open_auth(cli, &udb);
	if(rc != CLI_OK) goto done;

	/* Checked once before hashing, so nothing is hashed in vain; and again
	 * in the write transaction (write_all). */
	rc = userdb__begin_read(udb);
	if(rc == MQC_OK) rc = check_store(&imp, udb);
	userdb__rollback(udb);
	if(rc == MQC_OK && !imp.dry_run){
		rc = hash_passwords(&imp);
		if(rc != CLI_OK) goto done;
		rc = write_all(&imp, udb);
	}
	if(rc != MQC_OK){
		rc = cli__fail(rc, "importing the users");
		fprintf(stderr, "nothing was imported\n");
		goto done;
	}
	/* After the commit: wait until the broker has the accounts. */
	cli__close_auth(udb);
	udb = NULL;
	rc = report(&imp);
done:
	cli__close_auth(udb);
	import_free(&imp);
	return rc;
}

static int import_passwd(struct cli *cli)
{
	return import_file(cli, FMT_PASSWD);
}

static int import_dynsec(struct cli *cli)
{
	return import_file(cli, FMT_DYNSEC);
}

static int import_csv(struct cli *cli)
{
	return import_file(cli, FMT_CSV);
}

static const struct cli_operands one_file = {1, 1, "expected one file"};

static const struct cli_cmd import_cmds[] = {
	{.name = "mosquitto-passwd", .usage = "FILE [--dry-run]",
	 .help = "accounts of a Mosquitto password_file ($6$ and $7$ hashes, kept until each"
		 " one's first login)",
	 .handler = import_passwd, .operands = &one_file, .opts = {{"dry-run"}}},
	{.name = "dynsec", .usage = "FILE [--dry-run]",
	 .help = "the clients of a Mosquitto dynamic-security JSON file (roles, groups and ACLs"
		 " are not imported)",
	 .handler = import_dynsec, .operands = &one_file, .opts = {{"dry-run"}}},
	{.name = "csv", .usage = "FILE|- [--dry-run]",
	 .help = "name,password[,display_name] lines (RFC 4180, header optional; - reads stdin)",
	 .handler = import_csv, .operands = &one_file, .opts = {{"dry-run"}}},
};

int cli_import__main(struct cli *cli)
{
	return cli__dispatch(cli, "import", import_cmds, sizeof(import_cmds) / sizeof(import_cmds[0]),
			cli->nargs - 1, cli->args + 1);
}
