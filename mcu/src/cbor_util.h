/* CBOR helpers over zcbor: a bounded well-formedness check run before zcbor sees a
 * payload, and map walking with the value types docs/protocol.md allows. */
#ifndef MCU_CBOR_UTIL_H
#define MCU_CBOR_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <zcbor_decode.h>
#include <zcbor_encode.h>

/* Whether `payload` is exactly one well-formed CBOR item of definite lengths, nested
 * at most MCU_CBOR_MAX_DEPTH deep. Iterative: hostile input cannot exhaust the stack. */
bool cbor_well_formed(const uint8_t *payload, size_t len);

/* Open a map and walk its entries: cbor_next_key() decodes the next text key (false at
 * the end of the map, or for a key that is not text: see zcbor_check_error()). The
 * value is then decoded by the caller, or skipped with cbor_skip(). */
bool cbor_map_open(zcbor_state_t *zs);
bool cbor_next_key(zcbor_state_t *zs, struct zcbor_string *key, bool *bad);
bool cbor_map_close(zcbor_state_t *zs);
bool cbor_skip(zcbor_state_t *zs);

bool cbor_key_is(const struct zcbor_string *key, const char *text);

/* Values. Each returns false for a value of another type (the payload is malformed). */
bool cbor_get_uint(zcbor_state_t *zs, uint64_t *value);
bool cbor_get_bool(zcbor_state_t *zs, bool *value);
bool cbor_get_text(zcbor_state_t *zs, struct zcbor_string *value);
/* A number: an integer (within 32 bits) or a float of any width; NaN and infinities
 * are refused. */
bool cbor_get_number(zcbor_state_t *zs, double *value);
/* The major type of the next item (0..7), or -1 at the end of the payload. */
int cbor_peek_major(const zcbor_state_t *zs);

/* Encoding: a text string from a C string. */
bool cbor_put_text(zcbor_state_t *zs, const char *text);

#endif
