/*
 * The board layer: requests of docs/board-commands.md carried out on the port.
 *
 * Every request is answered (RESPONSE or ERROR) in the turn of the main loop that
 * received it, so in its own session. Events follow the answers of that turn.
 */
#include "board.h"

#include <string.h>

#include "cbor_util.h"
#include "imaged.h"
#include "request.h"
#include "printer_mcu/config.h"
#include "printer_mcu/port.h"

enum error_code {
	E_UNKNOWN_COMMAND = 1,
	E_BAD_ARGUMENT = 2,
	E_NOT_SUPPORTED = 4,
	E_INTERNAL = 5,
	E_NO_RESOURCES = 7,
};

struct crossing {
	bool pending;
	bool above;
	float reading;
	uint64_t t_us;
};

static struct {
	bool outputs[MCU_OUTPUT_COUNT];
	char display[2][MCU_DISPLAY_ROW_BYTES + 1u];

	/* window comparators: one-shot, sampled every MCU_ADC_SAMPLE_US while armed */
	bool armed[MCU_CHANNEL_COUNT];
	float low[MCU_CHANNEL_COUNT];
	float high[MCU_CHANNEL_COUNT];
	bool sample_now;
	uint64_t next_sample_us;
	struct crossing kept[MCU_CHANNEL_COUNT]; /* fired while the link was down */

	/* the regulator (output.regulate): the heater switched by fuser_c, sampled with the
	 * comparators; one slot, as the heater is the one output this device regulates */
	bool regulating;
	float regulate_low;
	float regulate_high;

	uint32_t imaging[MCU_IMAGING_MAX]; /* the host's handles still pending, ascending */
	size_t n_imaging;

	bool watchdog_counting;
	uint64_t watchdog_deadline_us;
	uint64_t last_heard_us;

	bool announce_reset;  /* the first session of this boot starts with a reset event */
	bool reset_pending;   /* board.reset answered: reset once the answer is acknowledged */
	uint64_t reset_give_up_us;
	bool reset_due;
	enum mcu_reset_cause reset_cause;
	bool overflow;

	uint64_t now_us;
	struct board_counters counters;
} B;

uint32_t board_rx_overruns;

/* -- events ------------------------------------------------------------------------------ */

/* Queue an EVENT whose "data" map has `n_data` entries written by `put_data`. */
typedef bool (*data_writer)(zcbor_state_t *zs, const void *arg);

static bool queue_event(const char *kind, uint64_t t_us, size_t n_data, data_writer put_data,
			const void *arg)
{
	if (link_state() != LINK_UP) {
		B.counters.events_dropped++;
		return false;
	}
	uint8_t *buf = link_reserve(MCU_EVENT_PAYLOAD_MAX);
	if (buf == NULL) {
		B.overflow = true;
		B.counters.events_dropped++;
		return false;
	}
	ZCBOR_STATE_E(zs, MCU_ZCBOR_BACKUPS, buf, MCU_EVENT_PAYLOAD_MAX, 1);
	bool ok = zcbor_map_start_encode(zs, 3) && cbor_put_text(zs, "kind") &&
		  cbor_put_text(zs, kind) && cbor_put_text(zs, "t_ns") &&
		  zcbor_uint64_put(zs, t_us * 1000u) && cbor_put_text(zs, "data") &&
		  zcbor_map_start_encode(zs, n_data) && put_data(zs, arg) &&
		  zcbor_map_end_encode(zs, n_data) && zcbor_map_end_encode(zs, 3);
	if (!ok) {
		B.counters.events_dropped++;
		return false;
	}
	link_commit(FT_EVENT, 0, (size_t)(zs->payload - buf));
	B.counters.events_sent++;
	return true;
}

struct input_edge {
	enum mcu_input input;
	bool level;
};

static bool put_input(zcbor_state_t *zs, const void *arg)
{
	const struct input_edge *edge = arg;
	return cbor_put_text(zs, "name") && cbor_put_text(zs, mcu_input_names[edge->input]) &&
	       cbor_put_text(zs, "level") && zcbor_bool_put(zs, edge->level);
}

struct window_fire {
	enum mcu_channel channel;
	const struct crossing *crossing;
};

static bool put_window(zcbor_state_t *zs, const void *arg)
{
	const struct window_fire *fire = arg;
	return cbor_put_text(zs, "channel") && cbor_put_text(zs, mcu_channel_names[fire->channel]) &&
	       cbor_put_text(zs, "reading") && zcbor_float32_put(zs, fire->crossing->reading) &&
	       cbor_put_text(zs, "crossing") &&
	       cbor_put_text(zs, fire->crossing->above ? "above" : "below");
}

struct imaging_report {
	uint32_t handle;
	enum mcu_imaging_state state;
	const char *error;
};

static bool put_imaging(zcbor_state_t *zs, const void *arg)
{
	static const char *const states[] = {"started", "done", "failed"};
	const struct imaging_report *report = arg;
	bool ok = cbor_put_text(zs, "handle") && zcbor_uint32_put(zs, report->handle) &&
		  cbor_put_text(zs, "state") && cbor_put_text(zs, states[report->state]);
	if (ok && report->state == MCU_IMAGING_FAILED) {
		const char *error = report->error != NULL ? report->error : "imaging failed";
		size_t len = strlen(error);
		ok = cbor_put_text(zs, "error") &&
		     zcbor_tstr_encode_ptr(zs, error, len < MCU_EVENT_ERROR_BYTES ? len : MCU_EVENT_ERROR_BYTES);
	}
	return ok;
}

static bool put_cause(zcbor_state_t *zs, const void *arg)
{
	(void)arg;
	return cbor_put_text(zs, "cause") &&
	       cbor_put_text(zs, mcu_reset_cause_names[port_reset_cause()]);
}

static void send_crossing(enum mcu_channel channel, struct crossing *crossing)
{
	struct window_fire fire = {channel, crossing};
	queue_event("window", crossing->t_us, 3, put_window, &fire);
	crossing->pending = false;
}

/* -- imaging bookkeeping ------------------------------------------------------------------ */

static int imaging_index(uint32_t handle)
{
	for (size_t i = 0; i < B.n_imaging; i++) {
		if (B.imaging[i] == handle) {
			return (int)i;
		}
	}
	return -1;
}

static void imaging_remove(size_t i)
{
	memmove(&B.imaging[i], &B.imaging[i + 1u], (B.n_imaging - i - 1u) * sizeof B.imaging[0]);
	B.n_imaging--;
}

static void imaging_add(uint32_t handle)
{
	size_t i = B.n_imaging;
	while (i > 0 && B.imaging[i - 1u] > handle) {
		B.imaging[i] = B.imaging[i - 1u];
		i--;
	}
	B.imaging[i] = handle;
	B.n_imaging++;
}

/* -- outputs -------------------------------------------------------------------------------- */

static void set_output(enum mcu_output output, bool on)
{
	B.outputs[output] = on;
	port_output_write(output, on);
}

static void safe_state(void)
{
	/* Ended first: the regulator would otherwise switch the heater back on. */
	B.regulating = false;
	set_output(MCU_OUT_HEATER, false);
	set_output(MCU_OUT_LASER, false);
	set_output(MCU_OUT_MOTOR, false);
}

/* -- lifecycle and link callbacks --------------------------------------------------------- */

void board_boot(uint64_t now_us)
{
	memset(&B, 0, sizeof B);
	imaged_clear();
	board_rx_overruns = 0;
	B.now_us = now_us;
	B.last_heard_us = now_us;
	B.announce_reset = true;
	for (int i = 0; i < MCU_OUTPUT_COUNT; i++) {
		set_output((enum mcu_output)i, false);
	}
	port_display_write("", "");
}

void board_session_up(bool peer_reset)
{
	(void)peer_reset;
	if (B.announce_reset) {
		B.announce_reset = false;
		queue_event("reset", B.now_us, 1, put_cause, NULL);
	}
	for (int ch = 0; ch < MCU_CHANNEL_COUNT; ch++) {
		if (B.kept[ch].pending) {
			send_crossing((enum mcu_channel)ch, &B.kept[ch]);
		}
	}
}

void board_session_down(enum link_down_reason reason)
{
	(void)reason;
	/* A real engine controller's failsafe: nothing hot or moving without a host. */
	safe_state();
	for (size_t i = 0; i < B.n_imaging; i++) {
		port_imaging_cancel(B.imaging[i]);
	}
	B.n_imaging = 0;
	B.watchdog_counting = false;
}

void board_heard(uint64_t now_us) { B.last_heard_us = now_us; }

/* -- interrupts ---------------------------------------------------------------------------- */

void board_input_changed(enum mcu_input input, bool level, uint64_t t_us)
{
	/* While the link is down edges are dropped: the snapshot tells the net change. */
	struct input_edge edge = {input, level};
	queue_event("input", t_us, 2, put_input, &edge);
}

void board_imaging_progress(uint32_t handle, enum mcu_imaging_state state, uint64_t t_us,
			    const char *error)
{
	int i = imaging_index(handle);
	if (i < 0) {
		return; /* cancelled, or of an ended session */
	}
	if (state != MCU_IMAGING_STARTED) {
		imaging_remove((size_t)i);
	}
	if (state == MCU_IMAGING_DONE) {
		imaged_add(handle); /* in case this event is lost with the session */
	}
	struct imaging_report report = {handle, state, error};
	queue_event("imaging", t_us, state == MCU_IMAGING_FAILED ? 3 : 2, put_imaging, &report);
}

/* -- answers ------------------------------------------------------------------------------- */

static void answer_error(uint16_t rid, enum error_code code, const char *msg)
{
	uint8_t *buf = link_reserve(MCU_TX_PAYLOAD_MAX);
	if (buf == NULL) {
		return; /* the room was checked before the request was taken */
	}
	ZCBOR_STATE_E(zs, MCU_ZCBOR_BACKUPS, buf, MCU_TX_PAYLOAD_MAX, 1);
	if (zcbor_map_start_encode(zs, 2) && cbor_put_text(zs, "code") &&
	    zcbor_uint32_put(zs, (uint32_t)code) && cbor_put_text(zs, "msg") &&
	    cbor_put_text(zs, msg) && zcbor_map_end_encode(zs, 2)) {
		link_commit(FT_ERROR, rid, (size_t)(zs->payload - buf));
	}
}

/* A RESPONSE: `put_result` writes the result value, or NULL for an empty payload. */
typedef bool (*result_writer)(zcbor_state_t *zs);

static void answer(uint16_t rid, result_writer put_result)
{
	uint8_t *buf = link_reserve(MCU_TX_PAYLOAD_MAX);
	if (buf == NULL) {
		return;
	}
	if (put_result == NULL) {
		link_commit(FT_RESPONSE, rid, 0);
		return;
	}
	ZCBOR_STATE_E(zs, MCU_ZCBOR_BACKUPS, buf, MCU_TX_PAYLOAD_MAX, 1);
	if (zcbor_map_start_encode(zs, 1) && cbor_put_text(zs, "result") && put_result(zs) &&
	    zcbor_map_end_encode(zs, 1)) {
		link_commit(FT_RESPONSE, rid, (size_t)(zs->payload - buf));
	} else {
		answer_error(rid, E_INTERNAL, "result does not fit");
	}
}

/* -- commands -------------------------------------------------------------------------------- */

static bool put_snapshot(zcbor_state_t *zs)
{
	bool ok = zcbor_map_start_encode(zs, 9) && cbor_put_text(zs, "t_ns") &&
		  zcbor_uint64_put(zs, B.now_us * 1000u) && cbor_put_text(zs, "inputs") &&
		  zcbor_map_start_encode(zs, MCU_INPUT_COUNT);
	for (int i = 0; ok && i < MCU_INPUT_COUNT; i++) {
		ok = cbor_put_text(zs, mcu_input_names[i]) &&
		     zcbor_bool_put(zs, port_input_read((enum mcu_input)i));
	}
	ok = ok && zcbor_map_end_encode(zs, MCU_INPUT_COUNT) && cbor_put_text(zs, "analog") &&
	     zcbor_map_start_encode(zs, MCU_CHANNEL_COUNT);
	for (int i = 0; ok && i < MCU_CHANNEL_COUNT; i++) {
		ok = cbor_put_text(zs, mcu_channel_names[i]) &&
		     zcbor_float32_put(zs, port_analog_read((enum mcu_channel)i));
	}
	ok = ok && zcbor_map_end_encode(zs, MCU_CHANNEL_COUNT) && cbor_put_text(zs, "outputs") &&
	     zcbor_map_start_encode(zs, MCU_OUTPUT_COUNT);
	for (int i = 0; ok && i < MCU_OUTPUT_COUNT; i++) {
		ok = cbor_put_text(zs, mcu_output_names[i]) && zcbor_bool_put(zs, B.outputs[i]);
	}
	ok = ok && zcbor_map_end_encode(zs, MCU_OUTPUT_COUNT) && cbor_put_text(zs, "reset_cause") &&
	     cbor_put_text(zs, mcu_reset_cause_names[port_reset_cause()]) &&
	     cbor_put_text(zs, "display") && zcbor_list_start_encode(zs, 2) &&
	     cbor_put_text(zs, B.display[0]) && cbor_put_text(zs, B.display[1]) &&
	     zcbor_list_end_encode(zs, 2) && cbor_put_text(zs, "imaging") &&
	     zcbor_list_start_encode(zs, MCU_IMAGING_MAX);
	for (size_t i = 0; ok && i < B.n_imaging; i++) {
		ok = zcbor_uint32_put(zs, B.imaging[i]);
	}
	/* "imaged" leaves room for "resets" and its uint32 */
	return ok && zcbor_list_end_encode(zs, MCU_IMAGING_MAX) && cbor_put_text(zs, "imaged") &&
	       imaged_put(zs, 7u + 5u) && cbor_put_text(zs, "resets") &&
	       zcbor_uint32_put(zs, port_reset_count()) && zcbor_map_end_encode(zs, 9);
}

static uint64_t clock_us;

static bool put_clock(zcbor_state_t *zs)
{
	return zcbor_map_start_encode(zs, 1) && cbor_put_text(zs, "t_ns") &&
	       zcbor_uint64_put(zs, clock_us * 1000u) && zcbor_map_end_encode(zs, 1);
}

static float analog_value;

static bool put_analog(zcbor_state_t *zs)
{
	return zcbor_map_start_encode(zs, 1) && cbor_put_text(zs, "value") &&
	       zcbor_float32_put(zs, analog_value) && zcbor_map_end_encode(zs, 1);
}

static bool cancelled_value;

static bool put_cancelled(zcbor_state_t *zs)
{
	return zcbor_map_start_encode(zs, 1) && cbor_put_text(zs, "cancelled") &&
	       zcbor_bool_put(zs, cancelled_value) && zcbor_map_end_encode(zs, 1);
}

static bool put_stats(zcbor_state_t *zs)
{
	const struct device_stats *s = device_get_stats();
	const struct {
		const char *name;
		uint32_t value;
	} fields[] = {
		{"frames_received", s->frames_received}, {"frames_sent", s->frames_sent},
		{"data_delivered", s->data_delivered},   {"retransmitted", s->retransmitted},
		{"timeouts", s->timeouts},               {"naks_sent", s->naks_sent},
		{"naks_received", s->naks_received},     {"duplicates", s->duplicates},
		{"out_of_order", s->out_of_order},       {"declined", s->declined},
		{"corrupt", s->corrupt},                 {"noise_bytes", s->noise_bytes},
		{"rx_overruns", s->rx_overruns},         {"sessions", s->sessions},
		{"sessions_lost", s->sessions_lost},     {"lost_silence", s->lost_silence},
		{"lost_no_progress", s->lost_no_progress},
		{"lost_peer_restarted", s->lost_peer_restarted},
		{"lost_peer_reset", s->lost_peer_reset}, {"lost_local_reset", s->lost_local_reset},
		{"handshake_failures", s->handshake_failures},
		{"requests", s->requests},               {"events_sent", s->events_sent},
		{"events_dropped", s->events_dropped},   {"overflows", s->overflows},
	};
	const size_t n = sizeof fields / sizeof fields[0];
	bool ok = zcbor_map_start_encode(zs, n);
	for (size_t i = 0; ok && i < n; i++) {
		ok = cbor_put_text(zs, fields[i].name) && zcbor_uint32_put(zs, fields[i].value);
	}
	return ok && zcbor_map_end_encode(zs, n);
}

/* Each command: carries it out and answers `rid`. */
typedef void (*command_fn)(uint16_t rid);

static void refuse_args(uint16_t rid) { answer_error(rid, E_BAD_ARGUMENT, arg_problem()); }

static void cmd_snapshot(uint16_t rid) { answer(rid, put_snapshot); }

static void cmd_output_set(uint16_t rid)
{
	int output;
	bool on;
	if (!arg_name("output", mcu_output_names, MCU_OUTPUT_COUNT, &output) || !arg_bool("on", &on)) {
		refuse_args(rid);
		return;
	}
	if (output == MCU_OUT_HEATER) {
		B.regulating = false; /* the host takes the heater back */
	}
	set_output((enum mcu_output)output, on);
	answer(rid, NULL);
}

static void cmd_output_regulate(uint16_t rid)
{
	int output;
	int channel;
	float low;
	float high;
	if (!arg_name("output", mcu_output_names, MCU_OUTPUT_COUNT, &output) ||
	    !arg_name("channel", mcu_channel_names, MCU_CHANNEL_COUNT, &channel) ||
	    !arg_number("low", &low) || !arg_number("high", &high)) {
		refuse_args(rid);
		return;
	}
	if (output != MCU_OUT_HEATER || channel != MCU_CH_FUSER_C) {
		answer_error(rid, E_NOT_SUPPORTED, "this device regulates only heater by fuser_c");
		return;
	}
	if (!(low <= high)) {
		answer_error(rid, E_BAD_ARGUMENT, "the band is empty (low > high)");
		return;
	}
	B.regulating = true;
	B.regulate_low = low;
	B.regulate_high = high;
	B.sample_now = true; /* the rule applies at once, after this answer */
	answer(rid, NULL);
}

static void cmd_pickup_pulse(uint16_t rid)
{
	port_pickup_pulse();
	answer(rid, NULL);
}

static void cmd_window_set(uint16_t rid)
{
	int channel;
	float low;
	float high;
	if (!arg_name("channel", mcu_channel_names, MCU_CHANNEL_COUNT, &channel) ||
	    !arg_number("low", &low) || !arg_number("high", &high)) {
		refuse_args(rid);
		return;
	}
	if (!(low <= high)) {
		answer_error(rid, E_BAD_ARGUMENT, "the window is empty (low > high)");
		return;
	}
	B.kept[channel].pending = false; /* re-armed: an old crossing is moot */
	B.armed[channel] = true;
	B.low[channel] = low;
	B.high[channel] = high;
	B.sample_now = true; /* a reading already outside fires at once, after this answer */
	answer(rid, NULL);
}

static void cmd_analog_read(uint16_t rid)
{
	int channel;
	if (!arg_name("channel", mcu_channel_names, MCU_CHANNEL_COUNT, &channel)) {
		refuse_args(rid);
		return;
	}
	analog_value = port_analog_read((enum mcu_channel)channel);
	answer(rid, put_analog);
}

static void cmd_display_show(uint16_t rid)
{
	char rows[2][MCU_DISPLAY_ROW_BYTES + 1u];
	if (!arg_rows(rows)) {
		refuse_args(rid);
		return;
	}
	memcpy(B.display, rows, sizeof rows);
	port_display_write(B.display[0], B.display[1]);
	answer(rid, NULL);
}

static void cmd_imaging_submit(uint16_t rid)
{
	uint32_t handle;
	uint32_t job;
	uint32_t page;
	float coverage;
	if (!arg_uint32("handle", &handle) || !arg_uint32("job", &job) ||
	    !arg_uint32("page", &page) || !arg_number("coverage_pct", &coverage)) {
		refuse_args(rid);
		return;
	}
	if (!(coverage >= 0.0f && coverage <= 100.0f)) {
		answer_error(rid, E_BAD_ARGUMENT, "'coverage_pct' must be in [0, 100]");
		return;
	}
	if (imaging_index(handle) >= 0) {
		answer_error(rid, E_BAD_ARGUMENT, "the handle is already pending");
		return;
	}
	if (B.n_imaging == MCU_IMAGING_MAX) {
		answer_error(rid, E_NO_RESOURCES, "too many imaging requests pending");
		return;
	}
	/* Pending before the port hears of it: it may report progress from inside the call
	 * (those reports are queued, and go out after this answer). */
	imaging_add(handle);
	if (!port_imaging_submit(handle, job, page, coverage)) {
		imaging_remove((size_t)imaging_index(handle));
		answer_error(rid, E_NO_RESOURCES, "the engine takes no more imaging requests now");
		return;
	}
	answer(rid, NULL);
}

static void cmd_imaging_cancel(uint16_t rid)
{
	uint32_t handle;
	if (!arg_uint32("handle", &handle)) {
		refuse_args(rid);
		return;
	}
	int i = imaging_index(handle);
	cancelled_value = false;
	if (i >= 0) {
		imaging_remove((size_t)i);
		cancelled_value = port_imaging_cancel(handle);
	}
	answer(rid, put_cancelled);
}

static void cmd_watchdog_kick(uint16_t rid)
{
	B.watchdog_counting = true;
	B.watchdog_deadline_us = B.now_us + BOARD_WATCHDOG_TIMEOUT_US;
	answer(rid, NULL);
}

static void cmd_board_reset(uint16_t rid)
{
	answer(rid, NULL);
	/* Answered first; the reset waits until the answer is acknowledged (two rto at
	 * most), as MCUboot and mcumgr do. */
	B.reset_pending = true;
	B.reset_give_up_us = B.now_us + 2u * MCU_RTO_US;
}

static void cmd_board_clock(uint16_t rid)
{
	/* The clock of the events' t_ns, read as the request is carried out (not the turn's
	 * start): answers go in order, so the host knows the device's time had reached
	 * this by then. */
	clock_us = port_now_us();
	answer(rid, put_clock);
}

static void cmd_device_stats(uint16_t rid) { answer(rid, put_stats); }

static const struct {
	const char *name;
	command_fn run;
} commands[] = {
	{"board.snapshot", cmd_snapshot},     {"output.set", cmd_output_set},
	{"output.regulate", cmd_output_regulate},
	{"pickup.pulse", cmd_pickup_pulse},   {"window.set", cmd_window_set},
	{"analog.read", cmd_analog_read},     {"display.show", cmd_display_show},
	{"imaging.submit", cmd_imaging_submit}, {"imaging.cancel", cmd_imaging_cancel},
	{"watchdog.kick", cmd_watchdog_kick}, {"board.reset", cmd_board_reset},
	{"board.clock", cmd_board_clock},     {"device.stats", cmd_device_stats},
};

bool board_deliver(const struct frame *frame)
{
	if (frame->type != FT_REQUEST) {
		return true; /* a host sends nothing else we act on */
	}
	/* Take a request only with room for its answer; otherwise it is as if lost. */
	if (!link_has_room(MCU_TX_PAYLOAD_MAX)) {
		return false;
	}
	B.counters.requests++;
	uint16_t rid = frame->request_id;
	struct zcbor_string cmd;
	if (!request_parse(frame, &cmd)) {
		answer_error(rid, E_BAD_ARGUMENT, "malformed request payload");
		return true;
	}
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
		if (cbor_key_is(&cmd, commands[i].name)) {
			commands[i].run(rid);
			return true;
		}
	}
	if (cmd.len >= 4 && memcmp(cmd.value, "sim.", 4) == 0) {
		answer_error(rid, E_NOT_SUPPORTED, "this device has no simulation commands");
	} else {
		answer_error(rid, E_UNKNOWN_COMMAND, "no such command");
	}
	return true;
}

/* -- timers ---------------------------------------------------------------------------------- */

static void sample_windows(uint64_t now_us)
{
	for (int ch = 0; ch < MCU_CHANNEL_COUNT; ch++) {
		if (!B.armed[ch]) {
			continue;
		}
		float reading = port_analog_read((enum mcu_channel)ch);
		if (reading >= B.low[ch] && reading <= B.high[ch]) {
			continue;
		}
		B.armed[ch] = false; /* one-shot */
		struct crossing *crossing = &B.kept[ch];
		crossing->pending = true;
		crossing->above = reading > B.high[ch];
		crossing->reading = reading;
		crossing->t_us = now_us;
		if (link_state() == LINK_UP) {
			send_crossing((enum mcu_channel)ch, crossing);
		}
	}
}

/* Bang-bang with the band as its hysteresis: off at or above the top, on at or below the
 * bottom, as it was in between. Switched through set_output(), so the snapshot shows it. */
static void sample_regulator(void)
{
	float reading = port_analog_read(MCU_CH_FUSER_C);
	bool on = B.outputs[MCU_OUT_HEATER];
	if (reading >= B.regulate_high) {
		on = false;
	} else if (reading <= B.regulate_low) {
		on = true;
	}
	if (on != B.outputs[MCU_OUT_HEATER]) {
		set_output(MCU_OUT_HEATER, on);
	}
}

/* Whether the channels are sampled: a comparator armed, or the regulator on. */
static bool sampling(void)
{
	bool any = B.regulating;
	for (int ch = 0; ch < MCU_CHANNEL_COUNT; ch++) {
		any = any || B.armed[ch];
	}
	return any;
}

void board_set_now(uint64_t now_us) { B.now_us = now_us; }

uint64_t board_poll(uint64_t now_us)
{
	B.now_us = now_us;
	if (sampling() && (B.sample_now || now_us >= B.next_sample_us)) {
		sample_windows(now_us);
		if (B.regulating) {
			sample_regulator();
		}
		B.next_sample_us = now_us + MCU_ADC_SAMPLE_US;
	}
	B.sample_now = false;

	if (B.watchdog_counting) {
		if (now_us - B.last_heard_us >= MCU_DEAD_AFTER_US / 2u) {
			/* It guards the host's firmware, not the cable: a silent line ends in link
			 * loss instead. */
			B.watchdog_counting = false;
		} else if (now_us >= B.watchdog_deadline_us) {
			B.reset_due = true;
			B.reset_cause = MCU_RESET_WATCHDOG;
		}
	}
	if (B.reset_pending &&
	    (link_unacknowledged() == 0 || link_state() != LINK_UP || now_us >= B.reset_give_up_us)) {
		B.reset_due = true;
		B.reset_cause = MCU_RESET_SOFTWARE;
	}

	/* Asked again: a one-shot comparator may have fired since. */
	uint64_t next = sampling() ? B.next_sample_us : UINT64_MAX;
	if (B.watchdog_counting) {
		uint64_t quiet_us = B.last_heard_us + MCU_DEAD_AFTER_US / 2u;
		next = B.watchdog_deadline_us < next ? B.watchdog_deadline_us : next;
		next = quiet_us < next ? quiet_us : next;
	}
	if (B.reset_pending) {
		/* Acks arrive as bytes, which wake the loop; the give-up time is a timer. */
		next = B.reset_give_up_us < next ? B.reset_give_up_us : next;
	}
	return next;
}

bool board_reset_due(enum mcu_reset_cause *cause)
{
	*cause = B.reset_cause;
	return B.reset_due;
}

bool board_take_overflow(void)
{
	bool overflow = B.overflow;
	B.overflow = false;
	if (overflow) {
		B.counters.overflows++;
	}
	return overflow;
}

const struct board_counters *board_get_counters(void) { return &B.counters; }
