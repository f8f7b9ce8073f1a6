/* cmd_who.c - "who": presence from the retained chat/presence/<user>
 * messages the plugin keeps. The wait is bounded by a round trip: the broker
 * sends the retained messages right after the SUBACK, so the UNSUBACK of the
 * same filter comes after all of them. */
#include <stdlib.h>
#include <string.h>

#include <mosquitto.h>

#include "session.h"

struct presence {
	json_t *states; /* user -> {"status","since"} */
	session_message_cb saved;   /* the caller's handler, for other topics */
	void *saved_ud;
};

static void presence_cb(struct session *s, const char *topic, const void *payload,
		size_t len, void *ud)
{
	struct presence *p = ud;
	struct topic_parts t;
	json_t *j;

	if(!topic__parse(topic, &t) || t.kind != TOPIC_PRESENCE){
		if(p->saved) p->saved(s, topic, payload, len, p->saved_ud);
		return;
	}
	/* The last level: t.a runs to the topic's NUL. */
	if(!names__valid(t.a.p, t.a.n)) return;
	j = json_loadb(payload, len, 0, NULL);
	if(j == NULL || !json_is_object(j)){
		json_decref(j);
		return;
	}
	json_object_set_new(p->states, t.a.p, j);
}

static bool wanted(json_t *members, const char *user)
{
	json_t *e;
	size_t i;

	if(members == NULL) return true;
	json_array_foreach(members, i, e){
		if(json_is_string(e) && !strcmp(json_string_value(e), user)) return true;
	}
	return false;
}

static void print_state(const char *user, json_t *st, bool json)
{
	const char *status = json_string_value(json_object_get(st, "status"));
	json_int_t since = json_integer_value(json_object_get(st, "since"));
	char when[32];

	if(json){
		json_t *o = json_pack("{s:s, s:s}", "user", user, "status", status ? status : "unknown");
		char *line;
		if(o && since) json_object_set_new(o, "since", json_integer(since));
		line = o ? json_dumps(o, JSON_COMPACT) : NULL;
		if(line) printf("%s\n", line);
		free(line);
		json_decref(o);
		return;
	}
	if(status == NULL){
		printf("%s: unknown\n", user);
		return;
	}
	util__fmt_time(since, true, when, sizeof(when));
	printf("%s: %s%s%s\n", user, status, since ? " since " : "", since ? when : "");
}

int cmd_who__show(struct session *s, const char *user, json_t *members, bool json)
{
	struct presence p;
	char topic[TOPIC_MAX_LEN + 1];
	const char *topics[1] = {topic};
	const char *key;
	json_t *st, *e;
	void *saved_ud = s->ud;
	size_t i;
	int rc;

	p.states = json_object();
	if(p.states == NULL) return EXIT_FAILED;
	topic__build(topic, sizeof(topic), TOPIC_PRESENCE, user ? user : "+", NULL);
	p.saved = s->on_message;
	p.saved_ud = saved_ud;
	s->on_message = presence_cb;
	s->ud = &p;
	rc = session__subscribe(s, topics, 1, 0, false);
	if(rc == EXIT_OK && s->granted[0] >= 0x80){
		util__error("not authorized to subscribe to %s (%s)", topic,
				mosquitto_reason_string(s->granted[0]));
		rc = EXIT_DENIED;
	}
	if(rc == EXIT_OK) rc = session__unsubscribe(s, topic);
	s->on_message = p.saved;
	s->ud = saved_ud;
	if(rc == EXIT_OK){
		if(user){
			print_state(user, json_object_get(p.states, user), json);
		}else if(members){
			json_array_foreach(members, i, e){
				if(json_is_string(e)){
					print_state(json_string_value(e),
							json_object_get(p.states, json_string_value(e)), json);
				}
			}
		}else{
			json_object_foreach(p.states, key, st){
				if(wanted(members, key)) print_state(key, st, json);
			}
		}
	}
	json_decref(p.states);
	return rc;
}

int cmd_who__run(struct options *opt, const struct cmd_args *a)
{
	struct session s;
	static const struct cmdline_opt opts[] = {{"json", 0, CMDLINE_NO_ARG, 'j'}, {0}};
	struct cmdline cl;
	const char *user = NULL;
	int c, rc;

	cmd__options(&cl, "who", opts, a->nargs, a->args);
	while((c = cmdline__next(&cl)) > 0) opt->json = true;
	if(c < 0) return cmd__options_end(&cl, "who", c);
	if(cl.nargs > 1) return cmd__usage("who");
	if(cl.nargs == 1) user = cl.args[0];
	if(user && !names__valid_str(user)) return login__bad_name("user", user);
	if((rc = options__need_user(opt))) return rc;
	if((rc = session__init(&s, opt, SESSION_ONESHOT)) == EXIT_OK
			&& (rc = session__connect(&s)) == EXIT_OK){
		rc = cmd_who__show(&s, user, NULL, opt->json);
	}
	session__cleanup(&s);
	return rc;
}
