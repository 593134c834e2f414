/*
 * The device end of the link: a port of hal/serial/_link.py's LinkEndpoint to bounded
 * C. Differences, all allowed by docs/protocol.md:
 *
 *  - acks are never delayed past the turn of the main loop that received the frame
 *    (the answer to a request carries its ack);
 *  - a REQUEST that finds no room for its answer is declined (dropped unacknowledged,
 *    as if lost; the host retransmits it);
 *  - frames queued for sending and not acknowledged when a session ends are dropped
 *    (answers and events belong to their session).
 */
#include "link.h"

#include <string.h>

#include "hello.h"
#include "printer_mcu/config.h"

#define SEQ_MASK 0xFFFFu
#define HALF_SPACE 0x8000u
#define NEVER UINT64_MAX
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

/* One data frame kept for (re)transmission; its payload is in tx_bytes. */
struct outbound {
	uint16_t offset;
	uint16_t length;
	uint16_t seq;
	uint16_t request_id;
	uint8_t type;
};

static struct {
	const struct link_callbacks *cb;
	struct cobs_encoder enc;
	uint64_t rng;

	enum link_state state;
	uint64_t boot_nonce;
	uint32_t session;
	uint32_t peer_session;
	bool peer_known;
	uint64_t peer_boot;

	/* handshake */
	uint64_t hello_due_us;
	uint64_t hello_interval_us;
	uint64_t last_hello_us;
	bool hello_sent;
	bool hello_pending;
	bool hello_ack_pending;

	/* per session */
	uint16_t tx_window;
	uint64_t hb_interval_us;
	uint16_t ack_every;

	/* sending: records [0, n_in_flight) are on the wire, the rest wait for the window */
	struct outbound out[MCU_TX_FRAMES_MAX];
	size_t n_out;
	size_t n_in_flight;
	size_t tx_used; /* bytes of tx_bytes in use, [0, tx_used) */
	uint16_t next_seq;
	bool retransmit;
	uint64_t rto_now_us;
	uint64_t rto_deadline_us; /* NEVER when nothing is in flight */
	uint64_t progress_us;

	/* receiving */
	uint16_t rx_expected;
	uint16_t rx_unacked;
	uint64_t ack_due_us; /* NEVER when no ack is owed */
	bool nak_pending;
	int32_t nak_expected;
	uint64_t nak_us;
	uint64_t last_rx_us;
	uint64_t last_tx_us;

	/* the chunk being received */
	size_t rx_len;
	bool rx_skipping;

	struct link_counters counters;
} L;

static uint8_t rx_chunk[MCU_RX_CHUNK_MAX];
static uint8_t tx_bytes[MCU_TX_RING_BYTES];
/* Room for a HELLO while it is encoded (it must fit in the minimum max_payload). */
static uint8_t hello_buf[MCU_RX_PAYLOAD_MAX];

static const uint64_t rto_cap_us = MAX(MCU_RTO_US, MIN(8u * MCU_RTO_US, MCU_DEAD_AFTER_US / 2u));

/* -- helpers --------------------------------------------------------------------------- */

static uint64_t next_random(void)
{
	/* splitmix64: session ids need to differ, not to be secret. */
	uint64_t z = (L.rng += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static uint32_t new_session_id(uint32_t old)
{
	uint32_t session;
	do {
		session = (uint32_t)next_random();
	} while (session == 0 || session == old);
	return session;
}

static uint16_t ack_value(void) { return (uint16_t)((L.rx_expected - 1u) & SEQ_MASK); }

/* The sequence number the next new data frame on the wire will carry. */
static uint16_t tx_next(void)
{
	return L.n_out > L.n_in_flight ? L.out[L.n_in_flight].seq : L.next_seq;
}

static void reset_sequences(uint64_t now_us)
{
	L.n_out = 0;
	L.n_in_flight = 0;
	L.tx_used = 0;
	L.next_seq = 0;
	L.retransmit = false;
	L.rto_now_us = MCU_RTO_US;
	L.rto_deadline_us = NEVER;
	L.progress_us = now_us;
	L.rx_expected = 0;
	L.rx_unacked = 0;
	L.ack_due_us = NEVER;
	L.nak_pending = false;
	L.nak_expected = -1;
	L.nak_us = 0;
	L.last_rx_us = now_us;
	L.last_tx_us = now_us;
}

/* -- public ------------------------------------------------------------------------------ */

void link_init(uint64_t boot_nonce, uint64_t random_seed, uint64_t now_us, cobs_sink_fn sink,
	       const struct link_callbacks *callbacks)
{
	memset(&L, 0, sizeof L);
	L.cb = callbacks;
	L.enc.sink = sink;
	L.rng = random_seed;
	L.boot_nonce = boot_nonce;
	L.session = new_session_id(0);
	L.state = LINK_CONNECTING;
	L.hello_due_us = now_us;
	L.hello_interval_us = MCU_RTO_US;
	L.tx_window = 1;
	L.hb_interval_us = MCU_HEARTBEAT_US;
	L.ack_every = 1;
	reset_sequences(now_us);
}

enum link_state link_state(void) { return L.state; }

size_t link_unacknowledged(void) { return L.n_out; }

const struct link_counters *link_get_counters(void) { return &L.counters; }

bool link_has_room(size_t len)
{
	return L.state == LINK_UP && L.n_out < MCU_TX_FRAMES_MAX &&
	       len <= MCU_TX_RING_BYTES - L.tx_used;
}

uint8_t *link_reserve(size_t max_len)
{
	return link_has_room(max_len) ? &tx_bytes[L.tx_used] : NULL;
}

void link_commit(uint8_t type, uint16_t request_id, size_t len)
{
	struct outbound *out = &L.out[L.n_out++];
	out->offset = (uint16_t)L.tx_used;
	out->length = (uint16_t)len;
	out->seq = L.next_seq;
	out->request_id = request_id;
	out->type = type;
	L.next_seq = (uint16_t)((L.next_seq + 1u) & SEQ_MASK);
	L.tx_used += len;
}

/* Forget the `count` oldest records (acknowledged): their bytes leave the arena. */
static void release(size_t count)
{
	size_t freed = 0;
	for (size_t i = 0; i < count; i++) {
		freed += L.out[i].length;
	}
	memmove(tx_bytes, &tx_bytes[freed], L.tx_used - freed);
	L.tx_used -= freed;
	memmove(L.out, &L.out[count], (L.n_out - count) * sizeof L.out[0]);
	L.n_out -= count;
	L.n_in_flight -= count;
	for (size_t i = 0; i < L.n_out; i++) {
		L.out[i].offset = (uint16_t)(L.out[i].offset - freed);
	}
}

/* -- sessions ----------------------------------------------------------------------------- */

void link_end_session(enum link_down_reason reason, uint64_t now_us)
{
	if (L.state != LINK_UP) {
		return;
	}
	reset_sequences(now_us);
	L.state = (reason == LINK_DOWN_SILENCE || reason == LINK_DOWN_NO_PROGRESS) ? LINK_DOWN
										   : LINK_CONNECTING;
	/* A new session id makes the peer see a restart even if it missed our silence;
	 * forgetting its session makes us wait for it to name ours. */
	L.session = new_session_id(L.session);
	L.peer_session = 0;
	L.hello_due_us = now_us;
	L.hello_interval_us = MCU_RTO_US;
	L.hello_pending = false;
	L.hello_ack_pending = false;
	L.counters.sessions_lost++;
	L.counters.lost_by_reason[reason]++;
	L.cb->session_down(reason);
}

static void come_up(const struct hello *peer, uint64_t now_us)
{
	bool peer_reset = L.peer_known && peer->boot != L.peer_boot;
	L.peer_known = true;
	L.peer_boot = peer->boot;
	L.state = LINK_UP;
	L.tx_window = (uint16_t)MIN(MCU_WINDOW, peer->window);
	uint64_t third_us = peer->dead_after_ns / 3000u;
	L.hb_interval_us = MIN((uint64_t)MCU_HEARTBEAT_US, MAX(1u, third_us));
	/* The peer's window is the same min(): half of it unacked means ack now. */
	L.ack_every = (uint16_t)MAX(1u, L.tx_window / 2u);
	L.hello_pending = false;
	L.hello_interval_us = MCU_RTO_US;
	reset_sequences(now_us);
	L.counters.sessions++;
	L.cb->session_up(peer_reset);
}

static void hurry_hello(uint64_t now_us)
{
	/* Bring the next HELLO forward, but to no more than four per rto: a host stuck in a
	 * dead session may be sending a whole window at us. */
	uint64_t soonest = now_us;
	if (L.hello_sent) {
		soonest = MAX(now_us, L.last_hello_us + MCU_RTO_US / 4u);
	}
	L.hello_due_us = MIN(L.hello_due_us, soonest);
}

static void on_hello(const struct frame *frame, uint64_t now_us)
{
	struct hello peer;
	memset(&peer, 0, sizeof peer);
	if (hello_parse(frame->payload, frame->length, &peer) != HELLO_OK) {
		L.counters.handshake_failures++;
		return;
	}
	if (!peer.role_is_host) {
		/* Our own HELLO echoed by the line, or another device: nobody to talk to. */
		L.counters.handshake_failures++;
		return;
	}
	bool is_hello = frame->type == FT_HELLO;
	if (L.state == LINK_UP) {
		if (peer.session == L.peer_session && peer.peer_session == L.session) {
			/* The peer repeats the handshake: it has not heard our HELLO_ACK yet. */
			L.last_rx_us = now_us;
			if (is_hello) {
				L.hello_ack_pending = true;
			}
			return;
		}
		link_end_session(peer.boot != L.peer_boot ? LINK_DOWN_PEER_RESET
							   : LINK_DOWN_PEER_RESTARTED,
				 now_us);
	}
	L.peer_session = peer.session;
	if (is_hello) {
		L.hello_ack_pending = true;
	}
	if (peer.peer_session == L.session) {
		come_up(&peer, now_us);
		if (!is_hello) {
			/* We learnt of the peer from its HELLO_ACK: tell it we heard it. */
			L.hello_ack_pending = true;
		}
	} else if (!is_hello) {
		hurry_hello(now_us);
	}
}

/* -- receiving --------------------------------------------------------------------------- */

static void request_nak(uint64_t now_us)
{
	if (L.state != LINK_UP) {
		return;
	}
	if ((int32_t)L.rx_expected == L.nak_expected && now_us - L.nak_us < MCU_RTO_US) {
		return;
	}
	L.nak_pending = true;
	L.nak_expected = (int32_t)L.rx_expected;
	L.nak_us = now_us;
}

static void on_ack(uint16_t ack, uint64_t now_us)
{
	if (L.n_in_flight == 0) {
		return;
	}
	size_t acked = (uint16_t)((ack - L.out[0].seq + 1u) & SEQ_MASK);
	if (acked == 0 || acked > L.n_in_flight) {
		return; /* an old ack, or one for frames never sent */
	}
	release(acked);
	L.progress_us = now_us;
	L.rto_now_us = MCU_RTO_US;
	if (L.n_in_flight > 0) {
		L.rto_deadline_us = now_us + L.rto_now_us;
	} else {
		L.rto_deadline_us = NEVER;
		L.retransmit = false;
	}
}

static void on_frame(const struct frame *frame, uint64_t now_us)
{
	if (frame->type == FT_HELLO || frame->type == FT_HELLO_ACK) {
		on_hello(frame, now_us);
		return;
	}
	if (L.state != LINK_UP) {
		/* The peer believes in a session we do not have: let it hear about ours soon. */
		hurry_hello(now_us);
		return;
	}
	L.last_rx_us = now_us;
	on_ack(frame->ack, now_us);
	uint16_t distance = (uint16_t)((frame->seq - L.rx_expected) & SEQ_MASK);
	if (frame->type >= FT_FIRST_DATA) {
		if (distance == 0) {
			if (!L.cb->deliver(frame)) {
				L.counters.declined++;
				return;
			}
			if (L.state != LINK_UP) {
				return; /* delivering it ended the session */
			}
			L.rx_expected = (uint16_t)((L.rx_expected + 1u) & SEQ_MASK);
			L.counters.data_delivered++;
			L.rx_unacked++;
			if ((frame->flags & FF_ACK_NOW) || L.rx_unacked >= L.ack_every) {
				L.ack_due_us = now_us;
			} else if (L.ack_due_us == NEVER) {
				L.ack_due_us = now_us + MCU_ACK_DELAY_US;
			}
		} else if (distance & HALF_SPACE) {
			/* Seen before: our ack was probably lost, so repeat it now. */
			L.counters.duplicates++;
			L.ack_due_us = now_us;
		} else {
			L.counters.out_of_order++;
			request_nak(now_us);
		}
		return;
	}
	if (frame->type == FT_NAK) {
		L.counters.naks_received++;
		if (L.n_in_flight > 0) {
			L.retransmit = true;
		}
	}
	/* A control frame's seq is the next one its sender will use: ahead of what we
	 * expect means frames were lost at the tail, where no later frame shows a gap. */
	if (distance != 0 && !(distance & HALF_SPACE)) {
		request_nak(now_us);
	}
	if (frame->flags & FF_ACK_NOW) {
		L.ack_due_us = now_us;
	}
}

static void on_chunk(size_t len, uint64_t now_us)
{
	struct frame frame;
	enum frame_verdict verdict = frame_judge(rx_chunk, len, MCU_RX_PAYLOAD_MAX, &frame);
	if (verdict == FV_GOOD) {
		L.counters.frames_received++;
		L.cb->heard(now_us);
		on_frame(&frame, now_us);
		return;
	}
	if (verdict == FV_NOISE) {
		L.counters.noise_bytes += (uint32_t)len;
		return;
	}
	L.counters.corrupt++;
	if (frame_verdict_is_damage(verdict)) {
		request_nak(now_us);
	}
}

void link_receive(const uint8_t *data, size_t len, uint64_t now_us)
{
	for (size_t i = 0; i < len; i++) {
		uint8_t byte = data[i];
		if (byte == 0) {
			if (L.rx_len > 0 && !L.rx_skipping) {
				on_chunk(L.rx_len, now_us);
			}
			L.rx_len = 0;
			L.rx_skipping = false;
		} else if (L.rx_skipping) {
			/* the rest of a chunk too long to keep: drop up to the next delimiter */
		} else if (L.rx_len == sizeof rx_chunk) {
			/* Longer than any frame we accept: TOO_LONG if it started like a frame. */
			if (rx_chunk[0] >= 2u && rx_chunk[1] == FRAME_MARKER) {
				L.counters.corrupt++;
				request_nak(now_us);
			} else {
				L.counters.noise_bytes += (uint32_t)L.rx_len;
			}
			L.rx_len = 0;
			L.rx_skipping = true;
		} else {
			rx_chunk[L.rx_len++] = byte;
		}
	}
}

/* -- sending ------------------------------------------------------------------------------ */

static bool wrote;

static void begin_batch(void)
{
	if (!wrote) {
		/* A delimiter first, so whatever went before cannot spoil the first frame. */
		static const uint8_t delimiter = 0;
		L.enc.sink(&delimiter, 1);
		wrote = true;
	}
}

static void send_control(uint8_t type, uint8_t flags, uint16_t seq, uint16_t ack,
			 const uint8_t *payload, size_t len)
{
	begin_batch();
	frame_write(&L.enc, type, flags, seq, ack, 0, payload, (uint16_t)len);
	L.counters.frames_sent++;
}

static void send_data(const struct outbound *out, uint16_t ack, uint8_t flags)
{
	begin_batch();
	frame_write(&L.enc, out->type, flags, out->seq, ack, out->request_id,
		    &tx_bytes[out->offset], out->length);
	L.counters.frames_sent++;
}

static void send_hellos(uint64_t now_us)
{
	size_t len = hello_encode(hello_buf, sizeof hello_buf, L.boot_nonce, L.session,
				  L.peer_session);
	if (L.hello_ack_pending) {
		L.hello_ack_pending = false;
		send_control(FT_HELLO_ACK, 0, 0, 0, hello_buf, len);
	}
	if (L.hello_pending) {
		L.hello_pending = false;
		send_control(FT_HELLO, 0, 0, 0, hello_buf, len);
		L.hello_sent = true;
		L.last_hello_us = now_us;
		L.hello_due_us = now_us + L.hello_interval_us;
		L.hello_interval_us = MIN(2u * L.hello_interval_us,
					  MAX((uint64_t)MCU_RTO_US, (uint64_t)MCU_HEARTBEAT_US));
	}
}

static void send_session_frames(uint64_t now_us)
{
	uint16_t ack = ack_value();
	bool carried_ack = false;
	if (L.nak_pending) {
		L.nak_pending = false;
		send_control(FT_NAK, 0, tx_next(), ack, NULL, 0);
		L.counters.naks_sent++;
		carried_ack = true;
	}
	if (L.retransmit) {
		L.retransmit = false;
		for (size_t i = 0; i < L.n_in_flight; i++) {
			send_data(&L.out[i], ack, FF_RETRANSMIT | FF_ACK_NOW);
		}
		L.counters.retransmitted += (uint32_t)L.n_in_flight;
		L.rto_deadline_us = now_us + L.rto_now_us;
		carried_ack = carried_ack || L.n_in_flight > 0;
	}
	while (L.n_in_flight < L.n_out && L.n_in_flight < L.tx_window) {
		send_data(&L.out[L.n_in_flight], ack, 0);
		if (L.n_in_flight == 0) {
			L.rto_deadline_us = now_us + L.rto_now_us;
			L.progress_us = now_us;
		}
		L.n_in_flight++;
		carried_ack = true;
	}
	if (carried_ack) {
		L.ack_due_us = NEVER;
		L.rx_unacked = 0;
	} else if (L.ack_due_us != NEVER && now_us >= L.ack_due_us) {
		send_control(FT_ACK, 0, tx_next(), ack, NULL, 0);
		L.ack_due_us = NEVER;
		L.rx_unacked = 0;
	}
	if (!wrote && now_us - L.last_tx_us >= L.hb_interval_us) {
		send_control(FT_HEARTBEAT, 0, tx_next(), ack, NULL, 0);
		L.ack_due_us = NEVER;
		L.rx_unacked = 0;
	}
}

static void poll_timers(uint64_t now_us)
{
	if (L.state == LINK_UP) {
		if (now_us - L.last_rx_us >= MCU_DEAD_AFTER_US) {
			link_end_session(LINK_DOWN_SILENCE, now_us);
		} else if (L.n_in_flight > 0 && now_us - L.progress_us >= MCU_DEAD_AFTER_US) {
			link_end_session(LINK_DOWN_NO_PROGRESS, now_us);
		} else if (L.n_in_flight > 0 && !L.retransmit && now_us >= L.rto_deadline_us) {
			L.retransmit = true;
			L.counters.timeouts++;
			L.rto_now_us = MIN(2u * L.rto_now_us, rto_cap_us);
		}
	}
	if (L.state != LINK_UP && now_us >= L.hello_due_us) {
		L.hello_pending = true;
	}
}

bool link_output(uint64_t now_us)
{
	poll_timers(now_us);
	wrote = false;
	if (L.hello_ack_pending || L.hello_pending) {
		send_hellos(now_us);
	}
	if (L.state == LINK_UP) {
		send_session_frames(now_us);
	}
	if (wrote) {
		L.last_tx_us = now_us;
	}
	return wrote;
}

uint64_t link_next_deadline(void)
{
	if (L.hello_pending || L.hello_ack_pending || L.nak_pending || L.retransmit) {
		return 0;
	}
	if (L.state != LINK_UP) {
		return L.hello_due_us;
	}
	if (L.n_out > L.n_in_flight && L.n_in_flight < L.tx_window) {
		return 0;
	}
	uint64_t deadline = MIN(L.last_rx_us + MCU_DEAD_AFTER_US, L.last_tx_us + L.hb_interval_us);
	if (L.n_in_flight > 0) {
		deadline = MIN(deadline, L.progress_us + MCU_DEAD_AFTER_US);
		deadline = MIN(deadline, L.rto_deadline_us);
	}
	return MIN(deadline, L.ack_due_us);
}
