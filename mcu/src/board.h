/*
 * The board layer (docs/board-commands.md): the host's requests carried out on the port,
 * the board's interrupts sent as events, and what the device does when its link goes
 * down (safe state) or its host firmware stops kicking (watchdog reset).
 */
#ifndef MCU_BOARD_H
#define MCU_BOARD_H

#include <stdbool.h>
#include <stdint.h>

#include "frame.h"
#include "link.h"
#include "printer_mcu/device.h"
#include "printer_mcu/names.h"

/* A new boot: every output off, nothing armed, nothing pending. */
void board_boot(uint64_t now_us);

/* The link's callbacks (see link.h). */
void board_session_up(bool peer_reset);
void board_session_down(enum link_down_reason reason);
bool board_deliver(const struct frame *frame);
void board_heard(uint64_t now_us);

/* Interrupts, in the main loop (device.c drains its queue into these). */
void board_input_changed(enum mcu_input input, bool level, uint64_t t_us);
void board_imaging_progress(uint32_t handle, enum mcu_imaging_state state, uint64_t t_us,
			    const char *error);

/* The time of this turn of the main loop (for answers and the watchdog). */
void board_set_now(uint64_t now_us);

/* Run the board's timers at `now_us` (comparators and the regulator's sampling, watchdog,
 * a reset waiting for its answer to be acknowledged); return when it must run again. */
uint64_t board_poll(uint64_t now_us);

/* Whether the device must reset now, and why. */
bool board_reset_due(enum mcu_reset_cause *cause);

/* An event could not be queued (no room): the session must end. */
bool board_take_overflow(void);

/* Board counters, for device.stats. */
struct board_counters {
	uint32_t requests;
	uint32_t events_sent;
	uint32_t events_dropped;
	uint32_t overflows;
};

const struct board_counters *board_get_counters(void);

/* Set by device.c, read by device.stats. */
extern uint32_t board_rx_overruns;

#endif
