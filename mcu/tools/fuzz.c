/*
 * A bounded fuzz of the device core, built with AddressSanitizer and UBSan (make fuzz):
 *
 *     printer-mcu-fuzz SECONDS [SEED]
 *
 * The driver plays a host that keeps a session up most of the time (HELLO, acks, valid
 * sequence numbers) and, in between, sends what a broken or hostile line would: REQUESTs
 * whose CBOR is mutated from valid ones of every command, control frames with random
 * numbers, mutated HELLOs, random bytes, frames damaged after encoding, and long jumps of
 * the clock (retransmissions, link loss, the watchdog, board.reset). The devkit plant is
 * behind the pins, on the driver's virtual clock.
 *
 * Every frame the device writes must be well formed (its CRC holds); a sanitizer report,
 * a crash or a malformed frame is a failure (exit status non-zero). At the end one line
 * of JSON gives the counts, so a test can check that the fuzz went deep (requests
 * delivered and answered, sessions).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cbor_util.h"
#include "cobs.h"
#include "frame.h"
#include "link.h"
#include "plant.h"
#include "printer_mcu/config.h"
#include "printer_mcu/device.h"
#include "printer_mcu/port.h"

static double monotonic_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* -- the driver's randomness ------------------------------------------------------------ */

static uint64_t rng_state;

static uint64_t rnd(void)
{
	uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static uint32_t below(uint32_t n) { return (uint32_t)(rnd() % n); }

/* -- the stub port: a virtual clock, a captured line ------------------------------------- */

static uint64_t now_us = 1000;
static enum mcu_reset_cause reset_cause = MCU_RESET_POWER_ON;
static uint32_t reset_count;
static bool reset_requested;

static uint8_t line_out[1 << 16];
static size_t line_out_len;

uint64_t port_now_us(void) { return now_us; }
uint64_t port_entropy(void) { return rnd(); }

void port_uart_write(const uint8_t *data, size_t len)
{
	if (line_out_len + len > sizeof line_out) {
		fprintf(stderr, "fuzz: the device wrote more than %zu bytes in one turn\n",
			sizeof line_out);
		exit(3);
	}
	memcpy(line_out + line_out_len, data, len);
	line_out_len += len;
}

void port_uart_flush(void) {}
enum mcu_reset_cause port_reset_cause(void) { return reset_cause; }
uint32_t port_reset_count(void) { return reset_count; }

void port_reset(enum mcu_reset_cause cause)
{
	reset_cause = cause;
	reset_count++;
	reset_requested = true;
}

void port_irq_lock(void) {}
void port_irq_unlock(void) {}

/* -- the driver's host ------------------------------------------------------------------- */

static struct {
	uint32_t session;
	uint32_t device_session; /* as last heard, 0 if none */
	bool up;                 /* we believe a session is up */
	uint16_t next_seq;
	uint16_t rx_expected;
	uint16_t next_rid;
} host;

static struct {
	unsigned long turns;
	unsigned long requests_sent;
	unsigned long responses;
	unsigned long errors;
	unsigned long events;
	unsigned long device_frames;
	unsigned long resets;
} seen;

static uint8_t to_device[4096];
static size_t to_device_len;
static struct cobs_encoder encoder;

static void to_device_sink(const uint8_t *data, size_t len)
{
	if (to_device_len + len <= sizeof to_device) {
		memcpy(to_device + to_device_len, data, len);
		to_device_len += len;
	}
}

static void send_frame(uint8_t type, uint8_t flags, uint16_t seq, uint16_t ack, uint16_t rid,
		       const uint8_t *payload, size_t len)
{
	static const uint8_t delimiter = 0;
	to_device_sink(&delimiter, 1);
	encoder.sink = to_device_sink;
	frame_write(&encoder, type, flags, seq, ack, rid, payload, (uint16_t)len);
}

static uint16_t host_ack(void) { return (uint16_t)(host.rx_expected - 1u); }

static size_t host_hello(uint8_t *buf, size_t cap)
{
	ZCBOR_STATE_E(zs, MCU_ZCBOR_BACKUPS, buf, cap, 1);
	bool ok = zcbor_map_start_encode(zs, 8) && cbor_put_text(zs, "version") &&
		  zcbor_uint32_put(zs, 0x10) && cbor_put_text(zs, "role") &&
		  cbor_put_text(zs, "host") && cbor_put_text(zs, "caps") &&
		  zcbor_list_start_encode(zs, 0) && zcbor_list_end_encode(zs, 0) &&
		  cbor_put_text(zs, "limits") && zcbor_map_start_encode(zs, 3) &&
		  cbor_put_text(zs, "max_payload") && zcbor_uint32_put(zs, 1024) &&
		  cbor_put_text(zs, "window") && zcbor_uint32_put(zs, 1u + below(8)) &&
		  cbor_put_text(zs, "dead_after_ns") && zcbor_uint64_put(zs, 3000000000ull) &&
		  zcbor_map_end_encode(zs, 3) && cbor_put_text(zs, "boot") &&
		  zcbor_uint64_put(zs, 42) && cbor_put_text(zs, "session") &&
		  zcbor_uint32_put(zs, host.session) && cbor_put_text(zs, "peer_session") &&
		  zcbor_uint32_put(zs, host.device_session) && zcbor_map_end_encode(zs, 8);
	return ok ? (size_t)(zs->payload - buf) : 0;
}

/* -- valid requests, to mutate ----------------------------------------------------------- */

static size_t make_request(uint8_t *buf, size_t cap)
{
	static const char *const outputs[] = {"heater", "motor", "laser", "led_ready", "nope"};
	static const char *const channels[] = {"toner_pct", "fuser_c", "x"};
	ZCBOR_STATE_E(zs, MCU_ZCBOR_BACKUPS, buf, cap, 1);
	bool ok = zcbor_map_start_encode(zs, 2) && cbor_put_text(zs, "cmd");
	switch (below(14)) {
	case 0:
		ok = ok && cbor_put_text(zs, below(2) == 0 ? "board.snapshot" : "board.clock");
		break;
	case 1:
		ok = ok && cbor_put_text(zs, "output.set") && cbor_put_text(zs, "args") &&
		     zcbor_map_start_encode(zs, 2) && cbor_put_text(zs, "output") &&
		     cbor_put_text(zs, outputs[below(5)]) && cbor_put_text(zs, "on") &&
		     zcbor_bool_put(zs, below(2)) && zcbor_map_end_encode(zs, 2);
		break;
	case 2:
		ok = ok && cbor_put_text(zs, "pickup.pulse");
		break;
	case 3:
		ok = ok && cbor_put_text(zs, "window.set") && cbor_put_text(zs, "args") &&
		     zcbor_map_start_encode(zs, 3) && cbor_put_text(zs, "channel") &&
		     cbor_put_text(zs, channels[below(3)]) && cbor_put_text(zs, "low") &&
		     zcbor_float64_put(zs, (double)below(300) - 50.0) && cbor_put_text(zs, "high") &&
		     zcbor_int32_put(zs, (int32_t)below(300)) && zcbor_map_end_encode(zs, 3);
		break;
	case 4:
		ok = ok && cbor_put_text(zs, "analog.read") && cbor_put_text(zs, "args") &&
		     zcbor_map_start_encode(zs, 1) && cbor_put_text(zs, "channel") &&
		     cbor_put_text(zs, channels[below(3)]) && zcbor_map_end_encode(zs, 1);
		break;
	case 5:
		ok = ok && cbor_put_text(zs, "display.show") && cbor_put_text(zs, "args") &&
		     zcbor_map_start_encode(zs, 1) && cbor_put_text(zs, "rows") &&
		     zcbor_list_start_encode(zs, 2) && cbor_put_text(zs, "READY \xc3\xa9t\xc3\xa9") &&
		     cbor_put_text(zs, "0123456789abcdefghij") && zcbor_list_end_encode(zs, 2) &&
		     zcbor_map_end_encode(zs, 1);
		break;
	case 6:
		ok = ok && cbor_put_text(zs, "imaging.submit") && cbor_put_text(zs, "args") &&
		     zcbor_map_start_encode(zs, 4) && cbor_put_text(zs, "handle") &&
		     zcbor_uint32_put(zs, below(24)) && cbor_put_text(zs, "job") &&
		     zcbor_uint32_put(zs, 1) && cbor_put_text(zs, "page") &&
		     zcbor_uint32_put(zs, below(5)) && cbor_put_text(zs, "coverage_pct") &&
		     zcbor_float32_put(zs, (float)below(120)) && zcbor_map_end_encode(zs, 4);
		break;
	case 7:
		ok = ok && cbor_put_text(zs, "imaging.cancel") && cbor_put_text(zs, "args") &&
		     zcbor_map_start_encode(zs, 1) && cbor_put_text(zs, "handle") &&
		     zcbor_uint32_put(zs, below(24)) && zcbor_map_end_encode(zs, 1);
		break;
	case 8:
		ok = ok && cbor_put_text(zs, "watchdog.kick");
		break;
	case 9:
		ok = ok && cbor_put_text(zs, below(20) == 0 ? "board.reset" : "device.stats");
		break;
	case 10:
		ok = ok && cbor_put_text(zs, "sim.toner");
		break;
	case 11:
		ok = ok && cbor_put_text(zs, "no.such.command");
		break;
	case 12:
		/* bands of either order around the fuser's range, pairs good and bad */
		ok = ok && cbor_put_text(zs, "output.regulate") && cbor_put_text(zs, "args") &&
		     zcbor_map_start_encode(zs, 4) && cbor_put_text(zs, "output") &&
		     cbor_put_text(zs, outputs[below(2) == 0 ? 0 : below(5)]) &&
		     cbor_put_text(zs, "channel") &&
		     cbor_put_text(zs, channels[below(2) == 0 ? 1 : below(3)]) &&
		     cbor_put_text(zs, "low") && zcbor_float64_put(zs, (double)below(300) - 50.0) &&
		     cbor_put_text(zs, "high") && zcbor_int32_put(zs, (int32_t)below(300)) &&
		     zcbor_map_end_encode(zs, 4);
		break;
	default:
		ok = ok && cbor_put_text(zs, "device.stats") && cbor_put_text(zs, "args") &&
		     zcbor_map_start_encode(zs, 1) && cbor_put_text(zs, "nested") &&
		     zcbor_list_start_encode(zs, 1) && zcbor_map_start_encode(zs, 1) &&
		     cbor_put_text(zs, "k") && zcbor_float16_bytes_put(zs, 0x3E00u) &&
		     zcbor_map_end_encode(zs, 1) && zcbor_list_end_encode(zs, 1) &&
		     zcbor_map_end_encode(zs, 1);
		break;
	}
	ok = ok && zcbor_map_end_encode(zs, 2);
	return ok ? (size_t)(zs->payload - buf) : 0;
}

static size_t mutate(uint8_t *buf, size_t len, size_t cap)
{
	unsigned rounds = below(4);
	for (unsigned r = 0; r < rounds; r++) {
		switch (below(6)) {
		case 0: /* flip a bit */
			if (len > 0) {
				buf[below((uint32_t)len)] ^= (uint8_t)(1u << below(8));
			}
			break;
		case 1: /* a random byte */
			if (len > 0) {
				buf[below((uint32_t)len)] = (uint8_t)rnd();
			}
			break;
		case 2: /* cut */
			len = len > 0 ? below((uint32_t)len + 1u) : 0;
			break;
		case 3: /* insert a byte */
			if (len < cap) {
				size_t at = below((uint32_t)len + 1u);
				memmove(buf + at + 1, buf + at, len - at);
				buf[at] = (uint8_t)rnd();
				len++;
			}
			break;
		case 4: /* a CBOR head of a container or big argument */ {
			static const uint8_t heads[] = {0x9f, 0xbf, 0xff, 0x1b, 0x5b, 0x7b, 0xfb, 0xf9,
							0xc2, 0x98, 0xb8, 0x81, 0xa1, 0x80, 0xa0};
			if (len > 0) {
				buf[below((uint32_t)len)] = heads[below(sizeof heads)];
			}
			break;
		}
		default: /* nest deeper: wrap in arrays */
			if (len + 8u <= cap) {
				unsigned depth = 1u + below(8);
				memmove(buf + depth, buf, len);
				memset(buf, 0x81, depth);
				len += depth;
			}
			break;
		}
	}
	return len;
}

/* -- reading what the device wrote ------------------------------------------------------- */

static uint8_t chunk[1 << 12];

static void on_device_frame(const struct frame *f)
{
	seen.device_frames++;
	if (f->type == FT_HELLO || f->type == FT_HELLO_ACK) {
		/* Its session; whether it has heard ours: pick the two ids out of the map. */
		ZCBOR_STATE_D(zs, MCU_ZCBOR_BACKUPS, f->payload, f->length, 1, 0);
		uint64_t session = 0;
		uint64_t peer = 0;
		struct zcbor_string key;
		bool bad = false;
		if (cbor_map_open(zs)) {
			while (cbor_next_key(zs, &key, &bad)) {
				if (cbor_key_is(&key, "session")) {
					cbor_get_uint(zs, &session);
				} else if (cbor_key_is(&key, "peer_session")) {
					cbor_get_uint(zs, &peer);
				} else if (!cbor_skip(zs)) {
					break;
				}
			}
		}
		if (session == 0) {
			fprintf(stderr, "fuzz: a device HELLO without a session\n");
			exit(4);
		}
		if ((uint32_t)session != host.device_session || peer != host.session) {
			host.device_session = (uint32_t)session;
			host.up = false;
		}
		return;
	}
	if (f->type >= FT_FIRST_DATA && f->seq == host.rx_expected) {
		host.rx_expected++;
		seen.responses += f->type == FT_RESPONSE;
		seen.errors += f->type == FT_ERROR;
		seen.events += f->type == FT_EVENT;
	}
}

static void read_device_output(void)
{
	size_t n = 0;
	for (size_t i = 0; i < line_out_len; i++) {
		if (line_out[i] != 0) {
			if (n < sizeof chunk) {
				chunk[n++] = line_out[i];
			}
			continue;
		}
		if (n > 0) {
			struct frame f;
			enum frame_verdict v = frame_judge(chunk, n, 0xFFFF, &f);
			if (v != FV_GOOD) {
				fprintf(stderr, "fuzz: the device wrote a bad frame (verdict %d)\n", v);
				exit(5);
			}
			on_device_frame(&f);
		}
		n = 0;
	}
	line_out_len = 0;
}

/* -- the driver ---------------------------------------------------------------------------- */

static void boot(void)
{
	reset_requested = false;
	plant_init(now_us);
	device_boot();
	host.up = false;
	host.device_session = 0;
}

static void turn(void)
{
	for (size_t i = 0; i < to_device_len; i++) {
		device_uart_rx_isr(to_device[i]);
	}
	to_device_len = 0;
	plant_poll(now_us);
	device_poll(now_us);
	read_device_output();
	if (reset_requested) {
		seen.resets++;
		boot();
	}
	seen.turns++;
}

static void handshake(void)
{
	uint8_t payload[256];
	size_t len = host_hello(payload, sizeof payload);
	send_frame(host.device_session != 0 ? FT_HELLO_ACK : FT_HELLO, 0, 0, 0, 0, payload, len);
	if (host.device_session != 0) {
		/* It named its session to us; naming it back brings it up. */
		host.up = true;
		host.next_seq = 0;
		host.rx_expected = 0;
	}
}

static void act(void)
{
	uint8_t payload[MCU_RX_PAYLOAD_MAX + 64];
	uint32_t dice = below(100);
	if (!host.up && dice < 80) {
		handshake();
		return;
	}
	if (dice < 55) {
		size_t len = mutate(payload, make_request(payload, sizeof payload), sizeof payload);
		uint16_t seq = below(10) == 0 ? (uint16_t)rnd() : host.next_seq;
		uint16_t rid = below(20) == 0 ? 0 : ++host.next_rid;
		uint8_t flags = below(10) == 0 ? (uint8_t)rnd() : 0;
		send_frame(FT_REQUEST, flags, seq, host_ack(), rid, payload, len);
		if (seq == host.next_seq) {
			host.next_seq++; /* if it was declined, a later gap repairs it */
		}
		seen.requests_sent++;
	} else if (dice < 70) {
		send_frame(FT_ACK, 0, host.next_seq, host_ack(), 0, NULL, 0);
	} else if (dice < 75) {
		static const uint8_t types[] = {FT_ACK, FT_NAK, FT_HEARTBEAT, FT_RESPONSE, FT_EVENT,
						0x06, 0x7F};
		send_frame(types[below(sizeof types)], (uint8_t)rnd(), (uint16_t)rnd(), (uint16_t)rnd(),
			   (uint16_t)rnd(), NULL, 0);
	} else if (dice < 80) {
		size_t len = mutate(payload, host_hello(payload, sizeof payload), sizeof payload);
		send_frame(below(2) ? FT_HELLO : FT_HELLO_ACK, 0, 0, 0, 0, payload, len);
	} else if (dice < 85) {
		size_t n = 1u + below(300);
		for (size_t i = 0; i < n && to_device_len < sizeof to_device; i++) {
			to_device[to_device_len++] = below(16) == 0 ? 0 : (uint8_t)rnd();
		}
	} else if (dice < 90) {
		size_t start = to_device_len;
		size_t len = make_request(payload, sizeof payload);
		send_frame(FT_REQUEST, 0, host.next_seq, host_ack(), ++host.next_rid, payload, len);
		if (to_device_len > start + 2u) {
			to_device[start + 1u + below((uint32_t)(to_device_len - start - 2u))] =
				(uint8_t)rnd(); /* damage after encoding */
		}
	} else if (dice < 95) {
		now_us += below(3) == 0 ? below(3000000) : below(20000);
	} else {
		/* a long frame of nothing but non-zero bytes: TOO_LONG */
		size_t n = MCU_RX_CHUNK_MAX + below(100);
		for (size_t i = 0; i < n && to_device_len < sizeof to_device; i++) {
			to_device[to_device_len++] = (uint8_t)(1u + below(255));
		}
		to_device[to_device_len < sizeof to_device ? to_device_len++ : sizeof to_device - 1u] = 0;
	}
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s SECONDS [SEED]\n", argv[0]);
		return 2;
	}
	double seconds = atof(argv[1]);
	rng_state = argc > 2 ? strtoull(argv[2], NULL, 0) : (uint64_t)time(NULL);
	uint64_t seed = rng_state;
	host.session = (uint32_t)rnd() | 1u;
	boot();
	double end = monotonic_s() + seconds; /* wall time: the bound a test waits for */
	while (monotonic_s() < end) {
		for (int i = 0; i < 256; i++) {
			act();
			turn();
			now_us += below(2000);
		}
	}
	const struct device_stats *s = device_get_stats();
	printf("{\"seed\": %llu, \"turns\": %lu, \"requests_sent\": %lu, \"requests_taken\": %u, "
	       "\"responses\": %lu, \"errors\": %lu, \"events\": %lu, \"device_frames\": %lu, "
	       "\"resets\": %lu, \"corrupt\": %u, \"naks_sent\": %u, \"sessions\": %u}\n",
	       (unsigned long long)seed, seen.turns, seen.requests_sent, s->requests, seen.responses,
	       seen.errors, seen.events, seen.device_frames, seen.resets, s->corrupt, s->naks_sent,
	       s->sessions);
	return 0;
}
