#include "cobs.h"

#include <string.h>

long cobs_decode_in_place(uint8_t *buf, size_t len)
{
	size_t in = 0;
	size_t out = 0;
	while (in < len) {
		uint8_t code = buf[in++];
		if (code == 0 || (size_t)(code - 1u) > len - in) {
			return -1;
		}
		/* out < in always holds: each block's zero is written after its data moved. */
		memmove(&buf[out], &buf[in], code - 1u);
		out += code - 1u;
		in += code - 1u;
		if (code < 0xFFu && in < len) {
			buf[out++] = 0;
		}
	}
	return (long)out;
}

static void send_block(struct cobs_encoder *enc)
{
	enc->block[0] = (uint8_t)(enc->n + 1u);
	enc->sink(enc->block, enc->n + 1u);
	enc->after_full = enc->n == 254u;
	enc->n = 0;
}

void cobs_encode_begin(struct cobs_encoder *enc, cobs_sink_fn sink)
{
	enc->sink = sink;
	enc->n = 0;
	enc->after_full = false;
}

void cobs_encode_bytes(struct cobs_encoder *enc, const uint8_t *data, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		uint8_t byte = data[i];
		if (byte == 0) {
			send_block(enc);
			continue;
		}
		enc->block[++enc->n] = byte;
		if (enc->n == 254u) {
			send_block(enc);
		}
	}
}

void cobs_encode_end(struct cobs_encoder *enc)
{
	static const uint8_t delimiter = 0;
	/* A message that ends with a full block needs no final code byte. */
	if (enc->n > 0 || !enc->after_full) {
		send_block(enc);
	}
	enc->sink(&delimiter, 1);
}
