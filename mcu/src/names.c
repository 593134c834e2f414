#include "printer_mcu/names.h"

#include <string.h>

const char *const mcu_input_names[MCU_INPUT_COUNT] = {
	"paper_present", "feed_sensor", "exit_sensor", "cover_open", "button_cancel",
	"button_continue",
};

const char *const mcu_output_names[MCU_OUTPUT_COUNT] = {
	"heater", "motor", "laser", "led_ready", "led_attention", "led_toner",
};

const char *const mcu_channel_names[MCU_CHANNEL_COUNT] = {"toner_pct", "fuser_c"};

const char *const mcu_reset_cause_names[MCU_RESET_CAUSE_COUNT] = {
	"power_on", "watchdog", "software",
};

int mcu_name_index(const char *const *names, size_t count, const char *text, size_t len)
{
	for (size_t i = 0; i < count; i++) {
		if (strlen(names[i]) == len && memcmp(names[i], text, len) == 0) {
			return (int)i;
		}
	}
	return -1;
}
