/* Frames: the 16 bytes around a payload, and the receiver's judgement of a chunk
 * (docs/protocol.md, "Frames" and "Receiving"). */
#ifndef MCU_FRAME_H
#define MCU_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cobs.h"

#define FRAME_MARKER 0xA5u
#define FRAME_HEADER_BYTES 12u
#define FRAME_CRC_BYTES 4u

enum frame_type {
	FT_HELLO = 0x01,
	FT_HELLO_ACK = 0x02,
	FT_ACK = 0x03,
	FT_NAK = 0x04,
	FT_HEARTBEAT = 0x05,
	FT_REQUEST = 0x10,
	FT_RESPONSE = 0x11,
	FT_ERROR = 0x12,
	FT_EVENT = 0x13,
};

#define FT_FIRST_DATA 0x10u

enum frame_flag {
	FF_RETRANSMIT = 0x01,
	FF_ACK_NOW = 0x02,
};

/* What a chunk between delimiters is, in the order the receiver decides it. */
enum frame_verdict {
	FV_GOOD,
	FV_NOISE,           /* not a frame: text or garbage */
	FV_BAD_MARKER,      /* a CRC-valid frame without the marker */
	FV_TOO_LONG,        /* longer than we accept (encoded, or its length field) */
	FV_BAD_COBS,
	FV_TRUNCATED,
	FV_BAD_CRC,
	FV_BAD_VERSION,
	FV_LENGTH_MISMATCH,
	FV_UNKNOWN_TYPE,
};

struct frame {
	uint8_t version;
	uint8_t type;
	uint8_t flags;
	uint16_t seq;
	uint16_t ack;
	uint16_t request_id;
	uint16_t length;
	const uint8_t *payload; /* inside the chunk it was decoded from */
};

/* Judge the chunk `buf[0..len)` (decoded in place). On FV_GOOD, `out` describes the
 * frame. `max_payload` is the longest payload we accept. */
enum frame_verdict frame_judge(uint8_t *buf, size_t len, size_t max_payload, struct frame *out);

/* Whether a verdict is damage on the line (worth a NAK in a session). */
bool frame_verdict_is_damage(enum frame_verdict verdict);

/* Encode a frame with COBS and its 0x00 delimiter into `enc`'s sink. */
void frame_write(struct cobs_encoder *enc, uint8_t type, uint8_t flags, uint16_t seq,
		 uint16_t ack, uint16_t request_id, const uint8_t *payload, uint16_t length);

#endif
