/*
 * The device core's entry points: what a port calls.
 *
 * Main loop of a port:
 *
 *     port hardware init;
 *     device_boot();
 *     for (;;) {
 *         uint64_t next_us = device_poll(port_now_us());
 *         sleep until next_us or an interrupt (never past next_us);
 *     }
 *
 * From interrupts: device_uart_rx_isr() for each received byte, device_input_isr() for
 * each edge of a digital input, device_imaging_isr() for imaging progress. Each is
 * short and bounded; what it queues is handled by the next device_poll().
 */
#ifndef PRINTER_MCU_DEVICE_H
#define PRINTER_MCU_DEVICE_H

#include <stdbool.h>
#include <stdint.h>

#include "names.h"

enum mcu_imaging_state {
	MCU_IMAGING_STARTED,
	MCU_IMAGING_DONE,
	MCU_IMAGING_FAILED
};

/* Start (or restart, after port_reset() returned on a hosted port) the device: a new
 * boot nonce, every output off, the link handshaking. */
void device_boot(void);

/* Do everything due at `now_us`; return the time by which it must be called again
 * (it may also be called earlier, e.g. after an interrupt). */
uint64_t device_poll(uint64_t now_us);

/* Interrupt context: one byte from the UART. */
void device_uart_rx_isr(uint8_t byte);

/* Interrupt context: `input` changed to `level` at `t_us` (port_now_us() time). */
void device_input_isr(enum mcu_input input, bool level, uint64_t t_us);

/* Interrupt context: progress of the imaging request `handle` at `t_us`; `error` names
 * a failure (a static string, or NULL). */
void device_imaging_isr(uint32_t handle, enum mcu_imaging_state state, uint64_t t_us,
			const char *error);

/* Counters, for a port's logs and the device.stats command. */
struct device_stats {
	uint32_t frames_received;
	uint32_t frames_sent;
	uint32_t data_delivered;
	uint32_t retransmitted;
	uint32_t timeouts;
	uint32_t naks_sent;
	uint32_t naks_received;
	uint32_t duplicates;
	uint32_t out_of_order;
	uint32_t declined;       /* requests dropped for want of room for their answer */
	uint32_t corrupt;        /* chunks that were damaged or unacceptable frames */
	uint32_t noise_bytes;    /* bytes that were not frames (boot text, garbage) */
	uint32_t rx_overruns;    /* bytes the receive ring had no room for */
	uint32_t sessions;
	uint32_t sessions_lost;
	uint32_t lost_silence;       /* sessions_lost, by reason */
	uint32_t lost_no_progress;
	uint32_t lost_peer_restarted;
	uint32_t lost_peer_reset;
	uint32_t lost_local_reset;   /* an event found no room (see overflows) */
	uint32_t handshake_failures;
	uint32_t requests;
	uint32_t events_sent;
	uint32_t events_dropped; /* input edges while the link was down (the snapshot tells) */
	uint32_t overflows;      /* sessions ended because an event found no room */
};

const struct device_stats *device_get_stats(void);

#endif
