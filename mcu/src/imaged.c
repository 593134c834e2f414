#include "imaged.h"

#include "printer_mcu/config.h"

static struct {
	uint32_t handles[MCU_IMAGED_KEPT];
	size_t count;
	size_t oldest; /* index of the oldest handle */
} R;

void imaged_clear(void)
{
	R.count = 0;
	R.oldest = 0;
}

void imaged_add(uint32_t handle)
{
	if (R.count < MCU_IMAGED_KEPT) {
		R.handles[(R.oldest + R.count) % MCU_IMAGED_KEPT] = handle;
		R.count++;
	} else {
		R.handles[R.oldest] = handle;
		R.oldest = (R.oldest + 1u) % MCU_IMAGED_KEPT;
	}
}

static uint32_t nth(size_t i) { return R.handles[(R.oldest + i) % MCU_IMAGED_KEPT]; }

static size_t uint_bytes(uint32_t v)
{
	return v < 24u ? 1u : v < 0x100u ? 2u : v < 0x10000u ? 3u : 5u;
}

bool imaged_put(zcbor_state_t *zs, size_t reserve)
{
	size_t room = (size_t)(zs->payload_end - zs->payload);
	size_t used = reserve + 2u; /* the list's head */
	size_t from = R.count;
	while (from > 0u && used + uint_bytes(nth(from - 1u)) <= room) {
		used += uint_bytes(nth(from - 1u));
		from--;
	}
	bool ok = zcbor_list_start_encode(zs, MCU_IMAGED_KEPT);
	for (size_t i = from; ok && i < R.count; i++) {
		ok = zcbor_uint32_put(zs, nth(i));
	}
	return ok && zcbor_list_end_encode(zs, MCU_IMAGED_KEPT);
}
