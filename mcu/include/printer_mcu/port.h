/*
 * The port interface: everything the device core needs from a board, and nothing more.
 *
 * A port implements the functions declared here (the core calls them) and calls the
 * entry points of device.h (from its interrupts and its main loop). The core never
 * touches hardware, never allocates and never blocks; it runs in the main loop only,
 * except for the three *_isr entry points, which are safe to call from interrupts.
 *
 * Context: unless stated otherwise, the core calls these from the main loop.
 */
#ifndef PRINTER_MCU_PORT_H
#define PRINTER_MCU_PORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "names.h"

/* -- time and entropy ------------------------------------------------------------------ */

/* Microseconds since boot, monotonic, never wrapping in the device's lifetime. Called
 * from the main loop and from whatever context the port calls device_*_isr in. */
uint64_t port_now_us(void);

/* 64 bits from the best entropy the board has (a hardware RNG, the unique ID mixed with
 * uninitialised RAM, a seed written by the debugger...). Called once per boot; the core
 * mixes it with a boot counter, so it need not change across resets. */
uint64_t port_entropy(void);

/* -- the UART ---------------------------------------------------------------------------- */

/* Send `len` bytes, in order, all of them (wait for room, or drop what the line cannot
 * take: the link repairs losses). Received bytes go to device_uart_rx_isr(). */
void port_uart_write(const uint8_t *data, size_t len);

/* Everything written so far should go out now (a port that buffers writes sends its
 * buffer; others do nothing). Called at the end of each device_poll() that wrote. */
void port_uart_flush(void);

/* -- pins ---------------------------------------------------------------------------------- */

/* A digital input's level now (true: a sheet covers the sensor, the cover is open, the
 * button is pressed). Each change of level must also reach device_input_isr(). */
bool port_input_read(enum mcu_input input);

/* An analog channel now, in its unit (°C for the fuser, % for the toner level). */
float port_analog_read(enum mcu_channel channel);

/* Drive an output (true: on). Applied in the order called. */
void port_output_write(enum mcu_output output, bool on);

/* Energise the pickup solenoid for the board's pulse (the port times the pulse). */
void port_pickup_pulse(void);

/* Show two rows on the panel (UTF-8, at most MCU_DISPLAY_COLUMNS characters each). */
void port_display_write(const char *row0, const char *row1);

/* -- imaging ----------------------------------------------------------------------------- */

/* Image a page on the next sheet to reach the drum. `handle` is the host's. Return false
 * if the engine cannot take another request now (the host is told NO_RESOURCES). The
 * port reports progress with device_imaging_isr(): MCU_IMAGING_STARTED when the sheet
 * reaches the drum, then MCU_IMAGING_DONE or MCU_IMAGING_FAILED. It may report them from
 * inside this call. */
bool port_imaging_submit(uint32_t handle, uint32_t job, uint32_t page, float coverage_pct);

/* Withdraw a request; true if it was still pending (no more reports come for it). */
bool port_imaging_cancel(uint32_t handle);

/* -- reset --------------------------------------------------------------------------------- */

/* Why the device last came out of reset. */
enum mcu_reset_cause port_reset_cause(void);

/* How many times the device has reset since power-on (0 after a power-on). */
uint32_t port_reset_count(void);

/* Reset the device now, recording `cause` for port_reset_cause() after the reboot.
 * Does not return on a microcontroller; a hosted port may return after re-running
 * device_boot() (the core expects nothing after the call). */
void port_reset(enum mcu_reset_cause cause);

/* -- interrupts -------------------------------------------------------------------------- */

/* Mask and unmask the interrupts that call device_*_isr. Called in pairs, from the main
 * loop and from those interrupts (device_input_isr, device_imaging_isr); unmasking must
 * restore the mask as it was before the matching lock. */
void port_irq_lock(void);
void port_irq_unlock(void);

#endif
