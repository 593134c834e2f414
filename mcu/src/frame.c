#include "frame.h"

#include "crc32.h"
#include "printer_mcu/config.h"

static uint16_t get_u16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

static void put_u16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static bool known_type(uint8_t type)
{
	return (type >= FT_HELLO && type <= FT_HEARTBEAT) || (type >= FT_REQUEST && type <= FT_EVENT);
}

static size_t max_encoded(size_t max_payload)
{
	size_t decoded = MCU_FRAME_OVERHEAD + max_payload;
	return decoded + decoded / 254u + 1u;
}

enum frame_verdict frame_judge(uint8_t *buf, size_t len, size_t max_payload, struct frame *out)
{
	if (len < 2 || buf[1] != FRAME_MARKER || buf[0] < 2) {
		/* Noise, unless it is a whole CRC-valid frame that lost its marker. */
		if (len >= MCU_FRAME_OVERHEAD && len <= max_encoded(max_payload)) {
			long n = cobs_decode_in_place(buf, len);
			if (n >= (long)MCU_FRAME_OVERHEAD &&
			    crc32_update(CRC32_INIT, buf, (size_t)n) == CRC32_RESIDUE) {
				return FV_BAD_MARKER;
			}
		}
		return FV_NOISE;
	}
	if (len > max_encoded(max_payload)) {
		return FV_TOO_LONG;
	}
	long n = cobs_decode_in_place(buf, len);
	if (n < 0) {
		return FV_BAD_COBS;
	}
	if (n < (long)MCU_FRAME_OVERHEAD) {
		return FV_TRUNCATED;
	}
	if (crc32_update(CRC32_INIT, buf, (size_t)n) != CRC32_RESIDUE) {
		return FV_BAD_CRC;
	}
	if ((buf[1] >> 4) != (MCU_PROTOCOL_VERSION >> 4)) {
		return FV_BAD_VERSION;
	}
	uint16_t length = get_u16(&buf[10]);
	if (length > max_payload) {
		return FV_TOO_LONG;
	}
	if ((long)length != n - (long)MCU_FRAME_OVERHEAD) {
		return FV_LENGTH_MISMATCH;
	}
	if (!known_type(buf[2])) {
		return FV_UNKNOWN_TYPE;
	}
	out->version = buf[1];
	out->type = buf[2];
	out->flags = buf[3];
	out->seq = get_u16(&buf[4]);
	out->ack = get_u16(&buf[6]);
	out->request_id = get_u16(&buf[8]);
	out->length = length;
	out->payload = &buf[FRAME_HEADER_BYTES];
	return FV_GOOD;
}

bool frame_verdict_is_damage(enum frame_verdict verdict)
{
	return verdict == FV_BAD_COBS || verdict == FV_TRUNCATED || verdict == FV_BAD_CRC ||
	       verdict == FV_TOO_LONG;
}

void frame_write(struct cobs_encoder *enc, uint8_t type, uint8_t flags, uint16_t seq,
		 uint16_t ack, uint16_t request_id, const uint8_t *payload, uint16_t length)
{
	uint8_t header[FRAME_HEADER_BYTES];
	header[0] = FRAME_MARKER;
	header[1] = MCU_PROTOCOL_VERSION;
	header[2] = type;
	header[3] = flags;
	put_u16(&header[4], seq);
	put_u16(&header[6], ack);
	put_u16(&header[8], request_id);
	put_u16(&header[10], length);
	uint32_t crc = crc32_update(CRC32_INIT, header, sizeof header);
	crc = crc32_final(crc32_update(crc, payload, length));
	uint8_t trailer[FRAME_CRC_BYTES] = {(uint8_t)crc, (uint8_t)(crc >> 8), (uint8_t)(crc >> 16),
					    (uint8_t)(crc >> 24)};
	cobs_encode_begin(enc, enc->sink);
	cobs_encode_bytes(enc, header, sizeof header);
	cobs_encode_bytes(enc, payload, length);
	cobs_encode_bytes(enc, trailer, sizeof trailer);
	cobs_encode_end(enc);
}
