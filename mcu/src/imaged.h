/* The handles imaged most recently (board.snapshot's "imaged"): a fixed ring of
 * MCU_IMAGED_KEPT host handles, oldest dropped first, so that a host whose "done" event
 * was lost with its session completes the page instead of printing it again. */
#ifndef MCU_IMAGED_H
#define MCU_IMAGED_H

#include <stddef.h>
#include <stdint.h>

#include <zcbor_encode.h>

/* Forget every handle (a new boot). */
void imaged_clear(void);

/* `handle` was imaged (its "done" event is being sent). */
void imaged_add(uint32_t handle);

/* Encode the "imaged" list, oldest first, leaving `reserve` bytes of the payload for
 * what follows it: every handle kept, unless the answer would outgrow the payload
 * (non-ASCII display rows and large handles), when the oldest are left out. */
bool imaged_put(zcbor_state_t *zs, size_t reserve);

#endif
