/* The REQUEST being handled: its command name and typed access to its arguments. */
#ifndef MCU_REQUEST_H
#define MCU_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cbor_util.h"
#include "frame.h"
#include "printer_mcu/config.h"

/* Take `frame` (a REQUEST) as the request being handled: its "cmd" into `cmd` (pointing
 * into the frame). False for a malformed payload. The frame must outlive the arg_*
 * calls that follow. */
bool request_parse(const struct frame *frame, struct zcbor_string *cmd);

bool arg_bool(const char *key, bool *value);
bool arg_uint32(const char *key, uint32_t *value);
/* An integer or a float, finite and within single precision. */
bool arg_number(const char *key, float *value);
/* A text that is one of `names`: its index. */
bool arg_name(const char *key, const char *const *names, size_t count, int *index);
/* "rows": a list of two texts, each cut to MCU_DISPLAY_COLUMNS characters. */
bool arg_rows(char rows[2][MCU_DISPLAY_ROW_BYTES + 1u]);

/* Why the last arg_* failed. */
const char *arg_problem(void);

#endif
