/*
 * The devkit plant: the mechanics a test jig would give the board, simulated behind the
 * port interface so that a host firmware can print on the device with nothing attached.
 *
 * It implements the pin and imaging functions of port.h (inputs, analog channels,
 * outputs, the pickup, the display, imaging) and raises input edges and imaging
 * progress through device.h, exactly as GPIO and engine interrupts would. Figures come
 * from the board file (board_params.h). The plant lives in the device's RAM: it starts
 * afresh at every boot (a reset of the device is a power cycle of the jig).
 */
#ifndef MCU_PLANT_H
#define MCU_PLANT_H

#include <stdint.h>

/* Power on: tray loaded, toner as loaded, fuser at ambient, the path empty. */
void plant_init(uint64_t now_us);

/* Everything that happened up to `now_us` (call before device_poll()). */
void plant_poll(uint64_t now_us);

/* When plant_poll() must run next (UINT64_MAX: nothing moves). */
uint64_t plant_next_deadline(void);

#endif
