/*
 * The REQUEST being handled (docs/protocol.md, "REQUEST"): its command name, and typed
 * access to its "args" map. Every arg_* returns false when the argument is missing or
 * ill-typed, and arg_problem() then says why, for the ERROR's "msg".
 */
#include "request.h"

#include <float.h>
#include <string.h>

#include "printer_mcu/config.h"
#include "printer_mcu/names.h"

static char message[96];

/* message = a + b + c (each may be NULL), cut to fit. */
static const char *say(const char *a, const char *b, const char *c)
{
	const char *parts[3] = {a, b, c};
	size_t n = 0;
	for (size_t p = 0; p < 3; p++) {
		for (const char *s = parts[p]; s != NULL && *s != '\0' && n + 1u < sizeof message; s++) {
			message[n++] = *s;
		}
	}
	message[n] = '\0';
	return message;
}

/* The request being handled: its "args" map, as encoded bytes (empty: no args). */
static const uint8_t *args_start;
static const uint8_t *args_end;
static const char *problem; /* why the last arg_* failed */

/* Position `zs` (declared by the caller over the args) at the value of `key`. */
static bool find_arg(zcbor_state_t *zs, const char *key)
{
	if (args_start == args_end || !cbor_map_open(zs)) {
		return false;
	}
	struct zcbor_string name;
	bool bad = false;
	while (cbor_next_key(zs, &name, &bad)) {
		if (cbor_key_is(&name, key)) {
			return true;
		}
		if (!cbor_skip(zs)) {
			return false;
		}
	}
	return false;
}

#define ARG_STATE(zs)                                                                       \
	ZCBOR_STATE_D(zs, MCU_ZCBOR_BACKUPS, args_start, (size_t)(args_end - args_start), 1, 0); \
	zs->constant_state->enforce_canonical = false

static bool missing(const char *key)
{
	problem = say("argument '", key, "' missing");
	return false;
}

static bool ill_typed(const char *key, const char *what)
{
	problem = say("'", key, what);
	return false;
}

bool arg_bool(const char *key, bool *value)
{
	ARG_STATE(zs);
	if (!find_arg(zs, key)) {
		return missing(key);
	}
	return cbor_get_bool(zs, value) || ill_typed(key, "' must be a boolean");
}

bool arg_uint32(const char *key, uint32_t *value)
{
	ARG_STATE(zs);
	if (!find_arg(zs, key)) {
		return missing(key);
	}
	uint64_t v;
	if (!cbor_get_uint(zs, &v) || v > UINT32_MAX) {
		return ill_typed(key, "' must be an unsigned integer below 2**32");
	}
	*value = (uint32_t)v;
	return true;
}

bool arg_number(const char *key, float *value)
{
	ARG_STATE(zs);
	if (!find_arg(zs, key)) {
		return missing(key);
	}
	double v;
	if (!cbor_get_number(zs, &v)) {
		return ill_typed(key, "' must be a finite number");
	}
	if (v > FLT_MAX || v < -FLT_MAX) {
		return ill_typed(key, "' is out of range"); /* no reading or bound is that large */
	}
	*value = (float)v;
	return true;
}

bool arg_name(const char *key, const char *const *names, size_t count, int *index)
{
	ARG_STATE(zs);
	if (!find_arg(zs, key)) {
		return missing(key);
	}
	struct zcbor_string text;
	if (!cbor_get_text(zs, &text)) {
		return ill_typed(key, "' must be a text string");
	}
	*index = mcu_name_index(names, count, (const char *)text.value, text.len);
	return *index >= 0 || ill_typed(key, "': no such name");
}

/* Copy at most MCU_DISPLAY_COLUMNS characters of UTF-8 `text` into `row`. */
static void cut_row(char *row, const struct zcbor_string *text)
{
	size_t chars = 0;
	size_t n = 0;
	for (; n < text->len && n < MCU_DISPLAY_ROW_BYTES; n++) {
		bool starts_char = (text->value[n] & 0xC0u) != 0x80u;
		if (starts_char && ++chars > MCU_DISPLAY_COLUMNS) {
			break;
		}
	}
	/* Never end inside a character cut by the byte limit. */
	while (n > 0 && n < text->len && (text->value[n] & 0xC0u) == 0x80u) {
		n--;
	}
	memcpy(row, text->value, n);
	row[n] = '\0';
}

bool arg_rows(char rows[2][MCU_DISPLAY_ROW_BYTES + 1u])
{
	ARG_STATE(zs);
	if (!find_arg(zs, "rows")) {
		return missing("rows");
	}
	if (cbor_peek_major(zs) != 4 || !zcbor_list_start_decode(zs)) {
		return ill_typed("rows", "' must be a list of two text strings");
	}
	for (int i = 0; i < 2; i++) {
		struct zcbor_string text;
		if (zcbor_array_at_end(zs) || !cbor_get_text(zs, &text)) {
			return ill_typed("rows", "' must be a list of two text strings");
		}
		cut_row(rows[i], &text);
	}
	if (!zcbor_array_at_end(zs)) {
		return ill_typed("rows", "' must be a list of two text strings");
	}
	return true;
}

/* Split a REQUEST payload into its command name and args; false if malformed. */
bool request_parse(const struct frame *frame, struct zcbor_string *cmd)
{
	args_start = args_end = NULL;
	if (frame->length == 0 || !cbor_well_formed(frame->payload, frame->length)) {
		return false;
	}
	ZCBOR_STATE_D(zs, MCU_ZCBOR_BACKUPS, frame->payload, frame->length, 1, 0);
	zs->constant_state->enforce_canonical = false;
	if (cbor_peek_major(zs) != 5 || !cbor_map_open(zs)) {
		return false;
	}
	bool have_cmd = false;
	struct zcbor_string key;
	bool bad = false;
	while (cbor_next_key(zs, &key, &bad)) {
		if (cbor_key_is(&key, "cmd")) {
			if (!cbor_get_text(zs, cmd)) {
				return false;
			}
			have_cmd = true;
		} else if (cbor_key_is(&key, "args")) {
			if (cbor_peek_major(zs) != 5) {
				return false;
			}
			args_start = zs->payload;
			if (!cbor_skip(zs)) {
				return false;
			}
			args_end = zs->payload;
		} else if (!cbor_skip(zs)) {
			return false;
		}
	}
	return !bad && have_cmd;
}

const char *arg_problem(void) { return problem; }
