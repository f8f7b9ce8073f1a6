/* names.c - the name grammar of the wire contract (see names.h). */
#include <string.h>

#include "names.h"

static bool is_lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool is_alnum(char c)
{
	return is_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

bool names__valid(const char *s, size_t len)
{
	size_t i;

	if(s == NULL || len == 0 || len > NAME_MAX_LEN) return false;
	if(!is_lower_alnum(s[0])) return false;
	for(i=1; i<len; i++){
		char c = s[i];
		if(!is_lower_alnum(c) && c != '_' && c != '.' && c != '-') return false;
	}
	return true;
}

bool names__valid_str(const char *s)
{
	if(s == NULL) return false;
	/* Bound the scan: anything longer than a name is invalid anyway. */
	return names__valid(s, strnlen(s, NAME_MAX_LEN + 1));
}

bool names__valid_device(const char *s, size_t len)
{
	size_t i;

	if(s == NULL || len == 0 || len > DEVICE_MAX_LEN) return false;
	for(i=0; i<len; i++){
		char c = s[i];
		if(!is_alnum(c) && c != '_' && c != '.' && c != '-') return false;
	}
	return true;
}

bool names__valid_msgid(const char *s, size_t len)
{
	size_t i;

	if(s == NULL || len == 0 || len > MSGID_MAX_LEN) return false;
	for(i=0; i<len; i++){
		char c = s[i];
		if(!is_alnum(c) && c != '_' && c != '-') return false;
	}
	return true;
}

bool names__split_clientid(const char *id, size_t *user_len,
		const char **device, size_t *device_len)
{
	size_t len;
	const char *at;

	if(id == NULL) return false;
	len = strnlen(id, CLIENTID_MAX_LEN + 1);
	if(len == 0 || len > CLIENTID_MAX_LEN) return false;

	at = memchr(id, '@', len);
	if(at == NULL){
		*user_len = len;
		*device = NULL;
		*device_len = 0;
		return true;
	}
	if(at == id) return false;
	*user_len = (size_t)(at - id);
	*device = at + 1;
	*device_len = len - *user_len - 1;
	return names__valid_device(*device, *device_len);
}
