/* The HELLO / HELLO_ACK payload (docs/protocol.md, "HELLO and HELLO_ACK"). */
#ifndef MCU_HELLO_H
#define MCU_HELLO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct hello {
	uint8_t version;
	bool role_is_host;
	uint16_t max_payload;
	uint16_t window;
	uint64_t dead_after_ns;
	uint64_t boot;
	uint32_t session;
	uint32_t peer_session;
};

enum hello_result {
	HELLO_OK,
	HELLO_MALFORMED,        /* missing or ill-typed field, or not a CBOR map */
	HELLO_VERSION_MISMATCH, /* another major version: nothing else is looked at */
};

/* Parse a peer's HELLO. The version is looked for and checked first, wherever it sits
 * in the map. Unknown keys are ignored. */
enum hello_result hello_parse(const uint8_t *payload, size_t len, struct hello *out);

/* Our HELLO, with "version" first. Returns its length, or 0 if `cap` is too small. */
size_t hello_encode(uint8_t *buf, size_t cap, uint64_t boot, uint32_t session,
		    uint32_t peer_session);

#endif
