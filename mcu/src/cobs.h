/* COBS (Cheshire & Baker 1999) as docs/protocol.md uses it: decoded in place, encoded
 * as a stream with a 254-byte look-ahead block (no buffer for a whole frame). */
#ifndef MCU_COBS_H
#define MCU_COBS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Decode `len` encoded bytes (no 0x00 among them) in place. Returns the decoded length,
 * or -1 if a code byte runs past the end (BAD_COBS). */
long cobs_decode_in_place(uint8_t *buf, size_t len);

typedef void (*cobs_sink_fn)(const uint8_t *data, size_t len);

struct cobs_encoder {
	cobs_sink_fn sink;
	size_t n;           /* data bytes in block[1..n] */
	bool after_full;    /* the last block sent was a full one (code 255) */
	uint8_t block[255]; /* block[0] is the code byte */
};

void cobs_encode_begin(struct cobs_encoder *enc, cobs_sink_fn sink);
void cobs_encode_bytes(struct cobs_encoder *enc, const uint8_t *data, size_t len);
/* Finish the message and send its 0x00 delimiter. */
void cobs_encode_end(struct cobs_encoder *enc);

#endif
