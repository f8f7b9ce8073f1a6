/* front.c - plugin_opt_front_addresses: the addresses of a front (HAProxy,
 * config/haproxy.cfg) that the broker sees instead of its clients'.
 *
 * Mosquitto 2.0.11 reads no PROXY protocol header, so every client behind a
 * front reaches the plugin with the front's address. The plugin's
 * per-address rules (auth.c: the address throttle, the per-name-and-address
 * key of the user throttle, registration connections per address) would
 * then hold every client back for one client's failures. Connections from
 * these addresses skip them: the front limits per client address itself,
 * and the user throttle keys on the name alone (auth__throttle_address).
 *
 * Addresses are kept as IPv6 (an IPv4 one as ::ffff:a.b.c.d, its prefix
 * + 96), so a dual-stack listener's "::ffff:10.0.0.1" and a plain
 * "10.0.0.1" match the same entry. Matched once per login, by a scan of at
 * most FRONT_MAX entries. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "err.h"
#include "plugin.h"

/* "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255/128" and a little more. */
#define FRONT_TOKEN_MAX 64
/* Between entries (a line's end too, should a config file have CRLFs). */
#define FRONT_SEPARATORS " \t\r\n,"

static const unsigned char v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* An address as 16 bytes: false if it is neither IPv4 nor IPv6 text. */
static bool parse_address(const char *s, unsigned char out[16], bool *v4)
{
	struct in_addr a4;

	if(inet_pton(AF_INET, s, &a4) == 1){
		memcpy(out, v4_mapped, sizeof(v4_mapped));
		memcpy(out + 12, &a4, 4);
		*v4 = true;
		return true;
	}
	*v4 = false;
	return inet_pton(AF_INET6, s, out) == 1;
}

/* Do a and b agree on their first bits bits? */
static bool same_prefix(const unsigned char *a, const unsigned char *b, unsigned bits)
{
	unsigned whole = bits / 8, rest = bits % 8;

	if(memcmp(a, b, whole) != 0) return false;
	if(rest == 0) return true;
	return ((a[whole] ^ b[whole]) & (unsigned char)(0xff << (8 - rest))) == 0;
}

/* Are the bits of a past its first bits bits all zero? */
static bool host_bits_zero(const unsigned char *a, unsigned bits)
{
	unsigned i;

	for(i=bits; i<128; i++){
		if(a[i / 8] & (0x80 >> (i % 8))) return false;
	}
	return true;
}

/* One "address" or "address/prefix" (token is NUL-terminated). */
static int add_one(struct mqchat_config *cfg, const char *token, char *err, size_t errlen)
{
	struct front_net *n;
	char addr[FRONT_TOKEN_MAX + 1];
	const char *slash = strchr(token, '/');
	unsigned prefix = 0, max;
	size_t alen = slash ? (size_t)(slash - token) : strlen(token);
	bool v4;

	if(strlen(token) > FRONT_TOKEN_MAX || alen == 0){
		goto bad;
	}
	memcpy(addr, token, alen);
	addr[alen] = '\0';
	if(cfg->front_count >= FRONT_MAX){
		snprintf(err, errlen, "plugin_opt_front_addresses: more than %d addresses", FRONT_MAX);
		return MQC_ERR_INVAL;
	}
	n = &cfg->front[cfg->front_count];
	if(!parse_address(addr, n->addr, &v4)) goto bad;
	max = v4 ? 32 : 128;
	if(slash == NULL){
		prefix = max;
	}else{
		const char *p = slash + 1;

		/* 1 to 3 digits, no sign, no leading zero (a typo more often than not). */
		if(*p == '\0' || strlen(p) > 3 || (p[0] == '0' && p[1] != '\0')) goto bad;
		for(; *p; p++){
			if(*p < '0' || *p > '9') goto bad;
			prefix = prefix * 10 + (unsigned)(*p - '0');
		}
		if(prefix > max) goto bad;
	}
	n->prefix = v4 ? prefix + 96 : prefix;
	/* 10.0.0.1/8 is more likely a mistake than a way to say 10.0.0.0/8. */
	if(!host_bits_zero(n->addr, n->prefix)){
		snprintf(err, errlen, "plugin_opt_front_addresses: \"%s\" has bits set past its prefix"
				" (write the network's first address)", token);
		return MQC_ERR_INVAL;
	}
	cfg->front_count++;
	return MQC_OK;
bad:
	snprintf(err, errlen, "plugin_opt_front_addresses: \"%.64s\" is not an IPv4 or IPv6 address"
			" or network (10.0.0.5, 10.0.0.0/24, fd00::/64)", token);
	return MQC_ERR_INVAL;
}

int front__add(struct mqchat_config *cfg, const char *value, char *err, size_t errlen)
{
	char token[FRONT_TOKEN_MAX + 2];
	const char *p = value;
	bool any = false;
	int rc;

	for(;;){
		size_t len, take;

		p += strspn(p, FRONT_SEPARATORS);
		if(*p == '\0') break;
		len = strcspn(p, FRONT_SEPARATORS);
		/* One longer than an address can be is enough for add_one to
		 * refuse it, and for the message to show its start. */
		take = len < sizeof(token) - 1 ? len : sizeof(token) - 1;
		memcpy(token, p, take);
		token[take] = '\0';
		rc = add_one(cfg, token, err, errlen);
		if(rc != MQC_OK) return rc;
		any = true;
		p += len;
	}
	if(!any){
		snprintf(err, errlen, "plugin_opt_front_addresses is empty");
		return MQC_ERR_INVAL;
	}
	return MQC_OK;
}

bool front__match(const struct mqchat_config *cfg, const char *addr)
{
	unsigned char a[16];
	size_t i;
	bool v4;

	if(cfg->front_count == 0 || addr == NULL || !parse_address(addr, a, &v4)) return false;
	for(i=0; i<cfg->front_count; i++){
		if(same_prefix(a, cfg->front[i].addr, cfg->front[i].prefix)) return true;
	}
	return false;
}

const char *auth__throttle_address(const struct mqchat *m, const char *addr)
{
	return front__match(&m->cfg, addr) ? NULL : addr;
}
