/*
 * The device core: the queues between interrupts and the main loop, the boot, and the
 * order of a turn of the main loop (device.h).
 *
 * A turn: bytes received (requests are carried out and answered as they arrive), then
 * the interrupts queued meanwhile (events), then the board's timers, then everything
 * due on the line. So an answer always precedes the events its request caused.
 */
#include "printer_mcu/device.h"

#include <string.h>

#include "board.h"
#include "link.h"
#include "printer_mcu/config.h"
#include "printer_mcu/port.h"

#if (MCU_RX_RING_BYTES & (MCU_RX_RING_BYTES - 1u)) != 0
#error "MCU_RX_RING_BYTES must be a power of two"
#endif
#if (MCU_IRQ_QUEUE & (MCU_IRQ_QUEUE - 1u)) != 0
#error "MCU_IRQ_QUEUE must be a power of two"
#endif

/* -- received bytes: one producer (the UART interrupt), one consumer (the main loop) -- */

static uint8_t rx_ring[MCU_RX_RING_BYTES];
static volatile uint32_t rx_head; /* written by the interrupt */
static volatile uint32_t rx_tail; /* written by the main loop */

void device_uart_rx_isr(uint8_t byte)
{
	uint32_t head = rx_head;
	if (head - rx_tail >= MCU_RX_RING_BYTES) {
		board_rx_overruns++;
		return;
	}
	rx_ring[head & (MCU_RX_RING_BYTES - 1u)] = byte;
	__asm__ volatile("" ::: "memory"); /* the byte before the index that publishes it */
	rx_head = head + 1u;
}

static void drain_rx(uint64_t now_us)
{
	uint32_t head = rx_head;
	__asm__ volatile("" ::: "memory");
	uint32_t tail = rx_tail;
	while (tail != head) {
		uint32_t at = tail & (MCU_RX_RING_BYTES - 1u);
		uint32_t run = head - tail;
		if (run > MCU_RX_RING_BYTES - at) {
			run = MCU_RX_RING_BYTES - at;
		}
		link_receive(&rx_ring[at], run, now_us);
		tail += run;
		rx_tail = tail;
	}
}

/* -- interrupts: several producers (locked), one consumer ----------------------------- */

enum irq_kind { IRQ_INPUT, IRQ_IMAGING };

struct irq_entry {
	uint64_t t_us;
	const char *error;
	uint32_t handle;
	uint8_t kind;
	uint8_t which; /* the input, or the imaging state */
	bool level;
};

static struct irq_entry irq_queue[MCU_IRQ_QUEUE];
static volatile uint32_t irq_head;
static volatile uint32_t irq_tail;
static volatile bool irq_overflow;

static void push_irq(const struct irq_entry *entry)
{
	port_irq_lock();
	uint32_t head = irq_head;
	if (head - irq_tail >= MCU_IRQ_QUEUE) {
		irq_overflow = true;
	} else {
		irq_queue[head & (MCU_IRQ_QUEUE - 1u)] = *entry;
		irq_head = head + 1u;
	}
	port_irq_unlock();
}

void device_input_isr(enum mcu_input input, bool level, uint64_t t_us)
{
	struct irq_entry entry = {t_us, NULL, 0, IRQ_INPUT, (uint8_t)input, level};
	push_irq(&entry);
}

void device_imaging_isr(uint32_t handle, enum mcu_imaging_state state, uint64_t t_us,
			const char *error)
{
	struct irq_entry entry = {t_us, error, handle, IRQ_IMAGING, (uint8_t)state, false};
	push_irq(&entry);
}

static bool drain_irqs(void)
{
	bool overflow = false;
	while (true) {
		port_irq_lock();
		bool empty = irq_tail == irq_head;
		struct irq_entry entry;
		if (!empty) {
			entry = irq_queue[irq_tail & (MCU_IRQ_QUEUE - 1u)];
			irq_tail = irq_tail + 1u;
		}
		if (irq_overflow) {
			irq_overflow = false;
			overflow = true;
		}
		port_irq_unlock();
		if (empty) {
			return overflow;
		}
		if (entry.kind == IRQ_INPUT) {
			board_input_changed((enum mcu_input)entry.which, entry.level, entry.t_us);
		} else {
			board_imaging_progress(entry.handle, (enum mcu_imaging_state)entry.which,
					       entry.t_us, entry.error);
		}
	}
}

/* -- boot and the main loop's turn ------------------------------------------------------- */

static const struct link_callbacks callbacks = {
	.session_up = board_session_up,
	.session_down = board_session_down,
	.deliver = board_deliver,
	.heard = board_heard,
};

static struct device_stats stats;
static uint64_t last_now_us;

static uint64_t mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

void device_boot(void)
{
	uint64_t now_us = port_now_us();
	last_now_us = now_us;
	port_irq_lock();
	rx_head = rx_tail = 0;
	irq_head = irq_tail = 0;
	irq_overflow = false;
	port_irq_unlock();
	/* A new nonce on every boot, even when the port's entropy repeats (QEMU's seed is
	 * the same after a reset): the reset count and the clock are mixed in. */
	uint64_t seed = port_entropy();
	uint64_t boot_nonce = mix64(seed ^ mix64((uint64_t)port_reset_count() + 1u) ^ now_us);
	board_boot(now_us);
	link_init(boot_nonce, mix64(boot_nonce + 0x9E3779B97F4A7C15ull), now_us, port_uart_write,
		  &callbacks);
}

uint64_t device_poll(uint64_t now_us)
{
	/* Time differences below are unsigned: a clock that stepped back would read as an
	 * age of centuries (silence, no progress). The port's clock is monotonic; this only
	 * makes sure a glitch of it cannot end a session. */
	if (now_us < last_now_us) {
		now_us = last_now_us;
	}
	last_now_us = now_us;
	board_set_now(now_us);
	drain_rx(now_us);
	bool overflow = drain_irqs();
	uint64_t board_next = board_poll(now_us);
	overflow = board_take_overflow() || overflow;
	if (overflow) {
		/* Promised events cannot be kept: end the session; the host's resynchronisation
		 * reads the net state (board.snapshot). */
		link_end_session(LINK_DOWN_LOCAL_RESET, now_us);
	}
	if (link_output(now_us)) {
		port_uart_flush();
	}
	enum mcu_reset_cause cause;
	if (board_reset_due(&cause)) {
		port_reset(cause);
		return 0;
	}
	uint64_t link_next = link_next_deadline();
	return link_next < board_next ? link_next : board_next;
}

const struct device_stats *device_get_stats(void)
{
	const struct link_counters *l = link_get_counters();
	const struct board_counters *b = board_get_counters();
	stats.frames_received = l->frames_received;
	stats.frames_sent = l->frames_sent;
	stats.data_delivered = l->data_delivered;
	stats.retransmitted = l->retransmitted;
	stats.timeouts = l->timeouts;
	stats.naks_sent = l->naks_sent;
	stats.naks_received = l->naks_received;
	stats.duplicates = l->duplicates;
	stats.out_of_order = l->out_of_order;
	stats.declined = l->declined;
	stats.corrupt = l->corrupt;
	stats.noise_bytes = l->noise_bytes;
	stats.rx_overruns = board_rx_overruns;
	stats.sessions = l->sessions;
	stats.sessions_lost = l->sessions_lost;
	stats.lost_silence = l->lost_by_reason[LINK_DOWN_SILENCE];
	stats.lost_no_progress = l->lost_by_reason[LINK_DOWN_NO_PROGRESS];
	stats.lost_peer_restarted = l->lost_by_reason[LINK_DOWN_PEER_RESTARTED];
	stats.lost_peer_reset = l->lost_by_reason[LINK_DOWN_PEER_RESET];
	stats.lost_local_reset = l->lost_by_reason[LINK_DOWN_LOCAL_RESET];
	stats.handshake_failures = l->handshake_failures;
	stats.requests = b->requests;
	stats.events_sent = b->events_sent;
	stats.events_dropped = b->events_dropped;
	stats.overflows = b->overflows;
	return &stats;
}
