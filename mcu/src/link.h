/*
 * The reliable link, device end (docs/protocol.md, "The link"): sessions by HELLO,
 * sequence numbers, cumulative acks, NAKs, go-back-N retransmission, heartbeats, and
 * the end of a session on silence or no progress.
 *
 * Sans-IO like the host's LinkEndpoint: fed bytes and the time, it writes frames through
 * the sink it was given and tells the application through callbacks. One thread (the
 * main loop) calls everything.
 */
#ifndef MCU_LINK_H
#define MCU_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cobs.h"
#include "frame.h"

enum link_state {
	LINK_CONNECTING, /* no session yet, or the peer started over: handshaking */
	LINK_UP,
	LINK_DOWN,       /* the session died of silence or no progress: handshaking */
};

enum link_down_reason {
	LINK_DOWN_SILENCE,
	LINK_DOWN_NO_PROGRESS,
	LINK_DOWN_PEER_RESTARTED,
	LINK_DOWN_PEER_RESET,
	LINK_DOWN_LOCAL_RESET,
};

struct link_callbacks {
	/* A session came up; `peer_reset`: the host's boot nonce changed since the last. */
	void (*session_up)(bool peer_reset);
	/* The session ended. What it had not delivered is gone; what we queued too. */
	void (*session_down)(enum link_down_reason reason);
	/* A data frame, in order. Return false to decline it: it is then neither delivered
	 * nor acknowledged, exactly as if it had been lost. */
	bool (*deliver)(const struct frame *frame);
	/* Any valid frame from the peer (heartbeats and HELLOs included). */
	void (*heard)(uint64_t now_us);
};

/* Start the link of a new boot. `sink` writes bytes to the line. */
void link_init(uint64_t boot_nonce, uint64_t random_seed, uint64_t now_us, cobs_sink_fn sink,
	       const struct link_callbacks *callbacks);

/* Bytes read from the line at `now_us`. */
void link_receive(const uint8_t *data, size_t len, uint64_t now_us);

/* Run the timers due at `now_us` and write every frame due. Returns whether it wrote. */
bool link_output(uint64_t now_us);

/* The latest time link_output() must run again (0: now). */
uint64_t link_next_deadline(void);

/* Sending a data frame, its payload encoded in place: link_reserve() gives room for
 * `max_len` payload bytes (NULL when the link is not up or the queue is full), then
 * link_commit() queues the `len` bytes written there. Nothing is queued without
 * link_commit(). */
uint8_t *link_reserve(size_t max_len);
void link_commit(uint8_t type, uint16_t request_id, size_t len);

/* Whether a payload of `len` bytes could be queued now. */
bool link_has_room(size_t len);

/* End the session now (a local reset: the device could not keep its promises). */
void link_end_session(enum link_down_reason reason, uint64_t now_us);

enum link_state link_state(void);
size_t link_unacknowledged(void); /* data frames sent or queued, not yet acknowledged */

/* Counters (never reset; for logs and device.stats). */
struct link_counters {
	uint32_t frames_received;
	uint32_t frames_sent;
	uint32_t data_delivered;
	uint32_t retransmitted;
	uint32_t timeouts;
	uint32_t naks_sent;
	uint32_t naks_received;
	uint32_t duplicates;
	uint32_t out_of_order;
	uint32_t declined;
	uint32_t corrupt;
	uint32_t noise_bytes;
	uint32_t sessions;
	uint32_t sessions_lost;
	uint32_t lost_by_reason[LINK_DOWN_LOCAL_RESET + 1]; /* by enum link_down_reason */
	uint32_t handshake_failures;
};

const struct link_counters *link_get_counters(void);

#endif
