/*
 * The board's vocabulary: the pins and values a printer engine board names on the wire
 * (docs/board-commands.md; the same strings as hal's DigitalInput, Output,
 * AnalogChannel and ResetCause, checked by tests/mcu).
 */
#ifndef PRINTER_MCU_NAMES_H
#define PRINTER_MCU_NAMES_H

#include <stddef.h>

enum mcu_input {
	MCU_IN_PAPER_PRESENT,
	MCU_IN_FEED_SENSOR,
	MCU_IN_EXIT_SENSOR,
	MCU_IN_COVER_OPEN,
	MCU_IN_BUTTON_CANCEL,
	MCU_IN_BUTTON_CONTINUE,
	MCU_INPUT_COUNT
};

enum mcu_output {
	MCU_OUT_HEATER,
	MCU_OUT_MOTOR,
	MCU_OUT_LASER,
	MCU_OUT_LED_READY,
	MCU_OUT_LED_ATTENTION,
	MCU_OUT_LED_TONER,
	MCU_OUTPUT_COUNT
};

enum mcu_channel {
	MCU_CH_TONER_PCT,
	MCU_CH_FUSER_C,
	MCU_CHANNEL_COUNT
};

/* Why the device came out of reset. */
enum mcu_reset_cause {
	MCU_RESET_POWER_ON,
	MCU_RESET_WATCHDOG,
	MCU_RESET_SOFTWARE,
	MCU_RESET_CAUSE_COUNT
};

extern const char *const mcu_input_names[MCU_INPUT_COUNT];
extern const char *const mcu_output_names[MCU_OUTPUT_COUNT];
extern const char *const mcu_channel_names[MCU_CHANNEL_COUNT];
extern const char *const mcu_reset_cause_names[MCU_RESET_CAUSE_COUNT];

/* The index of `text` (`len` bytes, not terminated) in `names`, or -1. */
int mcu_name_index(const char *const *names, size_t count, const char *text, size_t len);

#endif
