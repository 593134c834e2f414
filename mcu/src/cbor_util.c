#include "cbor_util.h"

#include <math.h>
#include <string.h>

#include "printer_mcu/config.h"

/* Reads the argument of the item head at `p`; returns its length or 0 if it is cut off
 * or uses a reserved or indefinite length. */
static size_t read_head(const uint8_t *p, const uint8_t *end, uint8_t *major, uint64_t *arg)
{
	if (p >= end) {
		return 0;
	}
	*major = (uint8_t)(p[0] >> 5);
	uint8_t info = p[0] & 0x1Fu;
	if (info < 24u) {
		*arg = info;
		return 1;
	}
	if (info > 27u) {
		return 0; /* reserved, or indefinite length (not accepted here) */
	}
	size_t n = (size_t)1u << (info - 24u);
	if ((size_t)(end - p) < 1u + n) {
		return 0;
	}
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++) {
		v = (v << 8) | p[1 + i];
	}
	*arg = v;
	return 1u + n;
}

bool cbor_well_formed(const uint8_t *payload, size_t len)
{
	/* remaining[d]: items still to read in the container open at depth d. */
	uint64_t remaining[MCU_CBOR_MAX_DEPTH + 1u];
	size_t depth = 0;
	const uint8_t *p = payload;
	const uint8_t *end = payload + len;
	remaining[0] = 1;
	while (true) {
		while (depth > 0 && remaining[depth] == 0) {
			depth--;
		}
		if (remaining[depth] == 0) {
			break; /* the top-level item is complete */
		}
		remaining[depth]--;
		uint8_t major;
		uint64_t arg;
		size_t head = read_head(p, end, &major, &arg);
		if (head == 0) {
			return false;
		}
		p += head;
		switch (major) {
		case 2: /* byte string */
		case 3: /* text string */
			if (arg > (uint64_t)(end - p)) {
				return false;
			}
			p += arg;
			break;
		case 4: /* array */
		case 5: /* map */
			if (major == 5) {
				if (arg > (uint64_t)(end - p) / 2u) {
					return false;
				}
				arg *= 2u;
			} else if (arg > (uint64_t)(end - p)) {
				return false; /* every item takes a byte at least */
			}
			if (depth == MCU_CBOR_MAX_DEPTH) {
				return false;
			}
			remaining[++depth] = arg;
			break;
		case 6: /* tag: the tagged item follows */
			remaining[depth]++;
			break;
		default: /* integers, simple values and floats: the head is the whole item */
			break;
		}
	}
	return p == end;
}

bool cbor_map_open(zcbor_state_t *zs) { return zcbor_map_start_decode(zs); }

bool cbor_next_key(zcbor_state_t *zs, struct zcbor_string *key, bool *bad)
{
	if (zcbor_array_at_end(zs)) {
		return false;
	}
	if (!zcbor_tstr_decode(zs, key)) {
		*bad = true;
		return false;
	}
	return true;
}

bool cbor_map_close(zcbor_state_t *zs) { return zcbor_list_map_end_force_decode(zs); }

bool cbor_skip(zcbor_state_t *zs) { return zcbor_any_skip(zs, NULL); }

bool cbor_key_is(const struct zcbor_string *key, const char *text)
{
	size_t n = strlen(text);
	return key->len == n && memcmp(key->value, text, n) == 0;
}

int cbor_peek_major(const zcbor_state_t *zs)
{
	if (zs->payload >= zs->payload_end) {
		return -1;
	}
	return zs->payload[0] >> 5;
}

bool cbor_get_uint(zcbor_state_t *zs, uint64_t *value)
{
	return cbor_peek_major(zs) == 0 && zcbor_uint64_decode(zs, value);
}

bool cbor_get_bool(zcbor_state_t *zs, bool *value)
{
	return cbor_peek_major(zs) == 7 && zcbor_bool_decode(zs, value);
}

bool cbor_get_text(zcbor_state_t *zs, struct zcbor_string *value)
{
	return cbor_peek_major(zs) == 3 && zcbor_tstr_decode(zs, value);
}

bool cbor_get_number(zcbor_state_t *zs, double *value)
{
	int major = cbor_peek_major(zs);
	if (major == 0 || major == 1) {
		int64_t whole;
		if (!zcbor_int64_decode(zs, &whole) || whole < INT32_MIN || whole > INT32_MAX) {
			return false; /* no reading or bound is that large */
		}
		/* Through 32 bits: a Cortex-M0 converts 64-bit integers with double arithmetic. */
		*value = (double)(int32_t)whole;
		return true;
	}
	if (major != 7 || !zcbor_float_decode(zs, value)) {
		return false;
	}
	return isfinite(*value);
}

bool cbor_put_text(zcbor_state_t *zs, const char *text)
{
	return zcbor_tstr_encode_ptr(zs, text, strlen(text));
}
