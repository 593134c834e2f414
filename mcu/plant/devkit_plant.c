/*
 * The devkit plant (plant.h): the input tray, the paper path with its two sensors, the
 * drum where pages are imaged, a first-order fuser with its thermostat (the hardware
 * over-temperature cutoff) and the toner cartridge — the models of emulator/physics,
 * cut to what a board without fault injection needs (no jams, misfeeds, cover or
 * buttons: those inputs rest at false).
 *
 * Time is integer microseconds of port_now_us(). A sheet's progress is its travel: the
 * microseconds of motor time it has moved; it reaches a landmark (an edge at a sensor,
 * the drum, the fuser nip, the output tray) at a fixed travel. Events are applied in
 * time order at their exact instant, however late plant_poll() runs, and the edges
 * carry that instant.
 */
#include "plant.h"

#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "board_params.h"
#include "printer_mcu/config.h"
#include "printer_mcu/device.h"
#include "printer_mcu/port.h"

#define SHEETS_MAX 8u       /* sheets in the path at once (the devkit holds three) */
#define IMAGING_QUEUE_MAX 8u /* requests waiting for a sheet */
#define NEVER UINT64_MAX

enum landmark {
	FEED_LEAD,
	DRUM_LEAD,
	FUSER_LEAD,
	EXIT_LEAD,
	FEED_TRAIL,
	DRUM_TRAIL,
	EXIT_TRAIL,
	OUTPUT,
	LANDMARK_COUNT
};

struct sheet {
	int64_t travel_us;   /* as of the motor's last start while it runs, else now */
	uint8_t next;        /* index into order[] of the next landmark */
	bool drum_lead_passed;
	bool drum_trail_passed;
	bool bound;          /* an imaging request is bound to it */
	bool imaging;        /* ... and has started */
	bool imaged;
	bool spoiled;        /* an attempt failed or its request was cancelled: passes blank */
	uint32_t handle;
	float coverage_pct;
};

struct queued {
	uint32_t handle;
	float coverage_pct;
};

static struct {
	int64_t mark_us[LANDMARK_COUNT]; /* travel at which each landmark is reached */
	uint8_t order[LANDMARK_COUNT];   /* landmarks by travel (ties: enum order) */
	int64_t length_us;

	bool outputs[MCU_OUTPUT_COUNT];
	bool motor_on;
	uint64_t since_us; /* the motor's last start */
	struct sheet sheets[SHEETS_MAX]; /* in the path, the furthest along first */
	unsigned n_sheets;
	unsigned feed_count;
	unsigned exit_count;
	bool feed_covered;
	bool exit_covered;

	unsigned tray_sheets;
	float toner_pct;

	/* fuser: T(t) = target + (T0 - target) * exp(-(t - t0) / tau), held at the
	 * element's thermostat (BOARD_FUSER_CUTOFF_C) while heating (see fuser_c) */
	uint64_t fuser_t0_us;
	float fuser_t0_c;
	float fuser_target_c;

	struct queued queue[IMAGING_QUEUE_MAX];
	unsigned n_queued;
} P;

static int64_t travel_us(float mm)
{
	/* Through 32 bits: a Cortex-M0 converts 64-bit integers with double arithmetic. */
	return (int32_t)(mm / BOARD_PAPER_SPEED_MM_S * 1e6f + 0.5f);
}

void plant_init(uint64_t now_us)
{
	memset(&P, 0, sizeof P);
	float places[LANDMARK_COUNT] = {
		[FEED_LEAD] = BOARD_FEED_SENSOR_MM,
		[DRUM_LEAD] = BOARD_DRUM_MM,
		[FUSER_LEAD] = BOARD_FUSER_MM,
		[EXIT_LEAD] = BOARD_EXIT_SENSOR_MM,
		[FEED_TRAIL] = BOARD_FEED_SENSOR_MM + BOARD_SHEET_LENGTH_MM,
		[DRUM_TRAIL] = BOARD_DRUM_MM + BOARD_SHEET_LENGTH_MM,
		[EXIT_TRAIL] = BOARD_EXIT_SENSOR_MM + BOARD_SHEET_LENGTH_MM,
		[OUTPUT] = BOARD_OUTPUT_MM + BOARD_SHEET_LENGTH_MM,
	};
	for (unsigned m = 0; m < LANDMARK_COUNT; m++) {
		P.mark_us[m] = travel_us(places[m]);
		/* insertion sort, stable: equal travel keeps the enum order */
		unsigned i = m;
		while (i > 0 && P.mark_us[P.order[i - 1u]] > P.mark_us[m]) {
			P.order[i] = P.order[i - 1u];
			i--;
		}
		P.order[i] = (uint8_t)m;
	}
	P.length_us = travel_us(BOARD_SHEET_LENGTH_MM);
	P.tray_sheets = BOARD_TRAY_LOADED_SHEETS;
	P.toner_pct = BOARD_TONER_LOADED_PCT;
	P.fuser_t0_us = now_us;
	P.fuser_t0_c = BOARD_FUSER_AMBIENT_C;
	P.fuser_target_c = BOARD_FUSER_AMBIENT_C;
}

/* -- fuser and toner -------------------------------------------------------------------- */

static float fuser_c(uint64_t t_us)
{
	if (t_us <= P.fuser_t0_us) {
		return P.fuser_t0_c;
	}
	/* Past an hour the curve has long reached its target; the cap keeps the conversion
	 * in 32 bits (see travel_us). */
	uint64_t elapsed_us = t_us - P.fuser_t0_us;
	float elapsed_s = (float)(uint32_t)(elapsed_us < 3600000000u ? elapsed_us : 3600000000u) * 1e-6f;
	float temp_c = P.fuser_target_c +
		       (P.fuser_t0_c - P.fuser_target_c) * expf(-elapsed_s / BOARD_FUSER_TAU_S);
	/* The element's thermostat, the hardware over-temperature cutoff: it opens at the
	 * cutoff whatever the firmware commands, so the heater never takes the fuser past
	 * it (an ideal thermostat holds it there), however late or silent the host is. As
	 * emulator/physics/_fuser.py: from above the cutoff it only holds, never heats. */
	if (P.fuser_target_c > BOARD_FUSER_CUTOFF_C && temp_c > BOARD_FUSER_CUTOFF_C) {
		return P.fuser_t0_c > BOARD_FUSER_CUTOFF_C ? P.fuser_t0_c : BOARD_FUSER_CUTOFF_C;
	}
	return temp_c;
}

static void fuser_rebase(uint64_t t_us, float temp_c)
{
	P.fuser_t0_us = t_us;
	P.fuser_t0_c = temp_c;
}

static void toner_consume(float coverage_pct)
{
	/* Percent of a full cartridge a page at 1 % coverage takes. */
	const float per_coverage_pct = 100.0f / (5.0f * (float)BOARD_TONER_CAPACITY_PAGES_AT_5PCT);
	P.toner_pct -= coverage_pct * per_coverage_pct;
	if (P.toner_pct < 0.0f) {
		P.toner_pct = 0.0f;
	}
}

/* -- imaging ---------------------------------------------------------------------------- */

static void start_imaging(struct sheet *sheet, uint64_t t_us)
{
	if (!P.outputs[MCU_OUT_LASER]) {
		sheet->bound = false;
		sheet->spoiled = true;
		device_imaging_isr(sheet->handle, MCU_IMAGING_FAILED, t_us,
				   "laser off when imaging started");
		return;
	}
	sheet->imaging = true;
	device_imaging_isr(sheet->handle, MCU_IMAGING_STARTED, t_us, NULL);
}

static void bind(struct sheet *sheet, uint32_t handle, float coverage_pct, uint64_t t_us)
{
	sheet->bound = true;
	sheet->handle = handle;
	sheet->coverage_pct = coverage_pct;
	if (sheet->drum_lead_passed) {
		start_imaging(sheet, t_us);
	}
}

static void bind_queued(struct sheet *sheet, uint64_t t_us)
{
	if (P.n_queued == 0) {
		return;
	}
	struct queued first = P.queue[0];
	P.n_queued--;
	memmove(&P.queue[0], &P.queue[1], P.n_queued * sizeof P.queue[0]);
	bind(sheet, first.handle, first.coverage_pct, t_us);
}

bool port_imaging_submit(uint32_t handle, uint32_t job, uint32_t page, float coverage_pct)
{
	(void)job;
	(void)page;
	uint64_t now_us = port_now_us();
	plant_poll(now_us);
	if (P.n_queued == 0) {
		for (unsigned i = 0; i < P.n_sheets; i++) {
			struct sheet *s = &P.sheets[i];
			if (!s->bound && !s->imaged && !s->spoiled && !s->drum_trail_passed) {
				bind(s, handle, coverage_pct, now_us);
				return true;
			}
		}
	}
	if (P.n_queued == IMAGING_QUEUE_MAX) {
		return false;
	}
	P.queue[P.n_queued].handle = handle;
	P.queue[P.n_queued].coverage_pct = coverage_pct;
	P.n_queued++;
	return true;
}

bool port_imaging_cancel(uint32_t handle)
{
	for (unsigned i = 0; i < P.n_queued; i++) {
		if (P.queue[i].handle == handle) {
			P.n_queued--;
			memmove(&P.queue[i], &P.queue[i + 1u], (P.n_queued - i) * sizeof P.queue[0]);
			return true;
		}
	}
	for (unsigned i = 0; i < P.n_sheets; i++) {
		struct sheet *s = &P.sheets[i];
		if (s->bound && s->handle == handle) {
			/* Withdrawn, whether its imaging had started or not: a later request
			 * must not land on a sheet already under way (the emulated board's rule). */
			s->bound = false;
			s->imaging = false;
			s->spoiled = true;
			return true;
		}
	}
	return false;
}

/* -- the paper path --------------------------------------------------------------------- */

static int64_t travel_now(const struct sheet *sheet, uint64_t t_us)
{
	return P.motor_on ? sheet->travel_us + (int64_t)(t_us - P.since_us) : sheet->travel_us;
}

static void set_sensor(enum mcu_input input, bool *covered, bool level, uint64_t t_us)
{
	if (*covered != level) {
		*covered = level;
		device_input_isr(input, level, t_us);
	}
}

static void reach(unsigned index, enum landmark mark, uint64_t t_us)
{
	struct sheet *sheet = &P.sheets[index];
	switch (mark) {
	case FEED_LEAD:
		P.feed_count++;
		set_sensor(MCU_IN_FEED_SENSOR, &P.feed_covered, true, t_us);
		break;
	case FEED_TRAIL:
		if (--P.feed_count == 0) {
			set_sensor(MCU_IN_FEED_SENSOR, &P.feed_covered, false, t_us);
		}
		break;
	case EXIT_LEAD:
		P.exit_count++;
		set_sensor(MCU_IN_EXIT_SENSOR, &P.exit_covered, true, t_us);
		break;
	case EXIT_TRAIL:
		if (--P.exit_count == 0) {
			set_sensor(MCU_IN_EXIT_SENSOR, &P.exit_covered, false, t_us);
		}
		break;
	case DRUM_LEAD:
		sheet->drum_lead_passed = true;
		if (sheet->bound) {
			start_imaging(sheet, t_us);
		}
		break;
	case DRUM_TRAIL:
		sheet->drum_trail_passed = true;
		if (sheet->bound && sheet->imaging) {
			sheet->bound = false;
			sheet->imaging = false;
			sheet->imaged = true;
			toner_consume(sheet->coverage_pct);
			device_imaging_isr(sheet->handle, MCU_IMAGING_DONE, t_us, NULL);
		}
		break;
	case FUSER_LEAD:
		fuser_rebase(t_us, fuser_c(t_us) - BOARD_FUSER_SHEET_DRAW_C);
		break;
	case OUTPUT:
		P.n_sheets--;
		memmove(&P.sheets[index], &P.sheets[index + 1u],
			(P.n_sheets - index) * sizeof P.sheets[0]);
		break;
	case LANDMARK_COUNT:
		break;
	}
}

/* The sheet whose next landmark comes first, and when (false: none while stopped). */
static bool next_event(unsigned *index, uint64_t *t_us)
{
	if (!P.motor_on) {
		return false;
	}
	bool found = false;
	for (unsigned i = 0; i < P.n_sheets; i++) {
		const struct sheet *s = &P.sheets[i];
		if (s->next >= LANDMARK_COUNT) {
			continue;
		}
		int64_t due = P.mark_us[P.order[s->next]] - s->travel_us;
		uint64_t at = due <= 0 ? P.since_us : P.since_us + (uint64_t)due;
		if (!found || at < *t_us) {
			found = true;
			*index = i;
			*t_us = at;
		}
	}
	return found;
}

void plant_poll(uint64_t now_us)
{
	unsigned index;
	uint64_t t_us;
	while (next_event(&index, &t_us) && t_us <= now_us) {
		struct sheet *sheet = &P.sheets[index];
		enum landmark mark = (enum landmark)P.order[sheet->next++];
		reach(index, mark, t_us);
	}
}

uint64_t plant_next_deadline(void)
{
	unsigned index;
	uint64_t t_us;
	return next_event(&index, &t_us) ? t_us : NEVER;
}

static void set_motor(bool on, uint64_t now_us)
{
	if (on == P.motor_on) {
		return;
	}
	if (on) {
		P.since_us = now_us;
	} else {
		for (unsigned i = 0; i < P.n_sheets; i++) {
			P.sheets[i].travel_us = travel_now(&P.sheets[i], now_us);
		}
	}
	P.motor_on = on;
}

static bool throat_clear(uint64_t now_us)
{
	return P.n_sheets == 0 || travel_now(&P.sheets[P.n_sheets - 1u], now_us) >= P.length_us;
}

/* -- the port's pins -------------------------------------------------------------------- */

void port_pickup_pulse(void)
{
	uint64_t now_us = port_now_us();
	plant_poll(now_us);
	if (P.tray_sheets == 0 || P.n_sheets == SHEETS_MAX || !throat_clear(now_us)) {
		return; /* the pickup slips */
	}
	P.tray_sheets--;
	if (P.tray_sheets == 0) {
		device_input_isr(MCU_IN_PAPER_PRESENT, false, now_us);
	}
	struct sheet *sheet = &P.sheets[P.n_sheets++];
	memset(sheet, 0, sizeof *sheet);
	/* Travel is kept as of the motor's start; this sheet had none then. */
	sheet->travel_us = P.motor_on ? -(int64_t)(now_us - P.since_us) : 0;
	bind_queued(sheet, now_us);
}

bool port_input_read(enum mcu_input input)
{
	switch (input) {
	case MCU_IN_PAPER_PRESENT:
		return P.tray_sheets > 0;
	case MCU_IN_FEED_SENSOR:
		return P.feed_covered;
	case MCU_IN_EXIT_SENSOR:
		return P.exit_covered;
	default:
		return false; /* cover closed, buttons up */
	}
}

float port_analog_read(enum mcu_channel channel)
{
	return channel == MCU_CH_FUSER_C ? fuser_c(port_now_us()) : P.toner_pct;
}

void port_output_write(enum mcu_output output, bool on)
{
	uint64_t now_us = port_now_us();
	plant_poll(now_us); /* what happened up to now happened with the outputs as they were */
	if (output == MCU_OUT_MOTOR) {
		set_motor(on, now_us);
	} else if (output == MCU_OUT_HEATER && on != P.outputs[MCU_OUT_HEATER]) {
		fuser_rebase(now_us, fuser_c(now_us));
		P.fuser_target_c = on ? BOARD_FUSER_MAX_C : BOARD_FUSER_AMBIENT_C;
	}
	P.outputs[output] = on;
}

void port_display_write(const char *row0, const char *row1)
{
	(void)row0;
	(void)row1; /* the jig has no panel to show them on */
}
