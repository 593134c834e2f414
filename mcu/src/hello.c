#include "hello.h"

#include "cbor_util.h"
#include "printer_mcu/config.h"

#define MAX_WINDOW 32767u
#define ROLE_HOST "host"
#define ROLE_DEVICE "device"

/* "plant" only with the simulated plant behind the pins; "regulator" always (the board
 * core regulates the heater, output.regulate). */
#if MCU_WITH_PLANT
#define CAPS_COUNT 2u
#else
#define CAPS_COUNT 1u
#endif

/* First pass: the version alone, skipping whatever else the map holds. */
static enum hello_result find_version(const uint8_t *payload, size_t len, uint8_t *version)
{
	ZCBOR_STATE_D(zs, MCU_ZCBOR_BACKUPS, payload, len, 1, 0);
	zs->constant_state->enforce_canonical = false;
	if (cbor_peek_major(zs) != 5 || !cbor_map_open(zs)) {
		return HELLO_MALFORMED;
	}
	struct zcbor_string key;
	bool bad = false;
	while (cbor_next_key(zs, &key, &bad)) {
		if (cbor_key_is(&key, "version")) {
			uint64_t v;
			if (!cbor_get_uint(zs, &v) || v > 0xFFu) {
				return HELLO_MALFORMED;
			}
			*version = (uint8_t)v;
			return (v >> 4) == (MCU_PROTOCOL_VERSION >> 4) ? HELLO_OK : HELLO_VERSION_MISMATCH;
		}
		if (!cbor_skip(zs)) {
			return HELLO_MALFORMED;
		}
	}
	return HELLO_MALFORMED;
}

static bool parse_limits(zcbor_state_t *zs, struct hello *out, unsigned *seen)
{
	if (cbor_peek_major(zs) != 5 || !cbor_map_open(zs)) {
		return false;
	}
	struct zcbor_string key;
	bool bad = false;
	while (cbor_next_key(zs, &key, &bad)) {
		uint64_t v = 0;
		if (cbor_key_is(&key, "max_payload")) {
			if (!cbor_get_uint(zs, &v) || v < 512u || v > 0xFFFFu) {
				return false;
			}
			out->max_payload = (uint16_t)v;
			*seen |= 1u;
		} else if (cbor_key_is(&key, "window")) {
			if (!cbor_get_uint(zs, &v) || v < 1u || v > MAX_WINDOW) {
				return false;
			}
			out->window = (uint16_t)v;
			*seen |= 2u;
		} else if (cbor_key_is(&key, "dead_after_ns")) {
			if (!cbor_get_uint(zs, &v)) {
				return false;
			}
			out->dead_after_ns = v;
			*seen |= 4u;
		} else if (!cbor_skip(zs)) {
			return false;
		}
	}
	return !bad && cbor_map_close(zs) && *seen == 7u;
}

enum hello_result hello_parse(const uint8_t *payload, size_t len, struct hello *out)
{
	if (!cbor_well_formed(payload, len)) {
		return HELLO_MALFORMED;
	}
	enum hello_result result = find_version(payload, len, &out->version);
	if (result != HELLO_OK) {
		return result;
	}
	ZCBOR_STATE_D(zs, MCU_ZCBOR_BACKUPS, payload, len, 1, 0);
	zs->constant_state->enforce_canonical = false;
	if (!cbor_map_open(zs)) {
		return HELLO_MALFORMED;
	}
	unsigned seen = 0;     /* role, boot, session, peer_session */
	unsigned limits = 0;   /* max_payload, window, dead_after_ns */
	struct zcbor_string key;
	bool bad = false;
	while (cbor_next_key(zs, &key, &bad)) {
		uint64_t v = 0;
		bool ok = true;
		if (cbor_key_is(&key, "role")) {
			struct zcbor_string role;
			ok = cbor_get_text(zs, &role);
			if (ok && cbor_key_is(&role, ROLE_HOST)) {
				out->role_is_host = true;
			} else if (ok && cbor_key_is(&role, ROLE_DEVICE)) {
				out->role_is_host = false;
			} else {
				ok = false;
			}
			seen |= 1u;
		} else if (cbor_key_is(&key, "limits")) {
			ok = parse_limits(zs, out, &limits);
		} else if (cbor_key_is(&key, "boot")) {
			ok = cbor_get_uint(zs, &out->boot);
			seen |= 2u;
		} else if (cbor_key_is(&key, "session")) {
			ok = cbor_get_uint(zs, &v) && v != 0 && v <= 0xFFFFFFFFu;
			out->session = (uint32_t)v;
			seen |= 4u;
		} else if (cbor_key_is(&key, "peer_session")) {
			ok = cbor_get_uint(zs, &v) && v <= 0xFFFFFFFFu;
			out->peer_session = (uint32_t)v;
			seen |= 8u;
		} else {
			/* "version" (checked above), the optional identity keys, and keys of
			 * later minor versions. */
			ok = cbor_skip(zs);
		}
		if (!ok) {
			return HELLO_MALFORMED;
		}
	}
	if (bad || !cbor_map_close(zs) || seen != 15u || limits != 7u) {
		return HELLO_MALFORMED;
	}
	return HELLO_OK;
}

size_t hello_encode(uint8_t *buf, size_t cap, uint64_t boot, uint32_t session,
		    uint32_t peer_session)
{
	ZCBOR_STATE_E(zs, MCU_ZCBOR_BACKUPS, buf, cap, 1);
	bool ok = zcbor_map_start_encode(zs, 10) &&
		  cbor_put_text(zs, "version") && zcbor_uint32_put(zs, MCU_PROTOCOL_VERSION) &&
		  cbor_put_text(zs, "role") && cbor_put_text(zs, ROLE_DEVICE) &&
		  cbor_put_text(zs, "caps") && zcbor_list_start_encode(zs, CAPS_COUNT) &&
#if MCU_WITH_PLANT
		  cbor_put_text(zs, "plant") &&
#endif
		  cbor_put_text(zs, "regulator") && zcbor_list_end_encode(zs, CAPS_COUNT) &&
		  cbor_put_text(zs, "limits") && zcbor_map_start_encode(zs, 3) &&
		  cbor_put_text(zs, "max_payload") && zcbor_uint32_put(zs, MCU_RX_PAYLOAD_MAX) &&
		  cbor_put_text(zs, "window") && zcbor_uint32_put(zs, MCU_WINDOW) &&
		  cbor_put_text(zs, "dead_after_ns") &&
		  zcbor_uint64_put(zs, (uint64_t)MCU_DEAD_AFTER_US * 1000u) &&
		  zcbor_map_end_encode(zs, 3) &&
		  cbor_put_text(zs, "device_id") && cbor_put_text(zs, "printer-mcu-" MCU_PORT_NAME) &&
		  cbor_put_text(zs, "board") && cbor_put_text(zs, BOARD_NAME) &&
		  cbor_put_text(zs, "image") && cbor_put_text(zs, MCU_FIRMWARE_VERSION) &&
		  cbor_put_text(zs, "boot") && zcbor_uint64_put(zs, boot) &&
		  cbor_put_text(zs, "session") && zcbor_uint32_put(zs, session) &&
		  cbor_put_text(zs, "peer_session") && zcbor_uint32_put(zs, peer_session) &&
		  zcbor_map_end_encode(zs, 10);
	return ok ? (size_t)(zs->payload - buf) : 0;
}
