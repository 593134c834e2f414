/*
 * What every Cortex-M port shares: the microsecond clock (a board's free-running counter)
 * and the SysTick alarm, resets and their cause (kept in RAM that survives a reset), the
 * boot entropy, interrupt masking, and the main loop that sleeps in WFI between turns.
 */
#include <stdbool.h>
#include <stdint.h>

#include "cortex_m.h"
#include "plant.h"
#include "printer_mcu/device.h"
#include "printer_mcu/port.h"

/* -- clock ----------------------------------------------------------------------------------
 *
 * Time is a free-running hardware counter of the board (board_counter_read()), extended
 * to 64 bits here. It must not be SysTick's millisecond interrupts: under QEMU (and on
 * any part whose interrupts can be held off) ticks come late or get merged, and a clock
 * counted from them runs slow and steps back against the counter it interpolates. SysTick
 * serves as a one-shot alarm that wakes the main loop from WFI at its next deadline. */

static uint32_t counter_last;
static uint64_t counter_high; /* wraps of the counter, << 32 */

void SysTick_Handler(void)
{
	SYST_CSR = 0; /* one shot: set again by the next sleep */
}

static inline uint32_t irq_save(void)
{
	uint32_t primask;
	__asm__ volatile("mrs %0, primask" : "=r"(primask));
	irq_disable();
	return primask;
}

static inline void irq_restore(uint32_t primask)
{
	__asm__ volatile("msr primask, %0" ::"r"(primask) : "memory");
}

uint64_t port_now_us(void)
{
	/* Called at every wake-up, and the longest sleep (SysTick's 24-bit range, about a
	 * second) is far shorter than the counter's wrap: one comparison catches every wrap. */
	uint32_t primask = irq_save();
	uint32_t raw = board_counter_read();
	if (raw < counter_last) {
		counter_high += 1ull << 32;
	}
	counter_last = raw;
	uint64_t ticks = counter_high | raw;
	irq_restore(primask);
	return ticks / (board_counter_hz / 1000000u);
}

static void clock_init(void)
{
	board_counter_init();
	counter_last = board_counter_read();
}

#define SYSTICK_MAX_CYCLES 0xFFFFFFu /* 24 bits: 0.67 s at 25 MHz, 1 s at 16 MHz */

/* Arm SysTick to fire `delay_us` from now (at most its 24-bit range). */
static void alarm_in(uint64_t delay_us)
{
	if (delay_us > 1000000u) {
		delay_us = 1000000u; /* beyond SysTick's range anyway; and no overflow below */
	}
	uint64_t cycles = delay_us * (board_cpu_hz / 1000000u);
	if (cycles > SYSTICK_MAX_CYCLES) {
		cycles = SYSTICK_MAX_CYCLES;
	} else if (cycles < 2u) {
		cycles = 2u;
	}
	SYST_CSR = 0;
	SYST_RVR = (uint32_t)cycles - 1u;
	SYST_CVR = 0;
	SYST_CSR = 7u; /* processor clock, interrupt, enabled */
}

/* -- resets: a record in RAM the startup code leaves alone --------------------------------- */

#define RESET_MAGIC 0x52455345u /* "RESE" */

struct reset_record {
	uint32_t magic;
	uint32_t count;      /* resets since power-on */
	uint32_t cause;      /* what port_reset() was asked for */
	uint32_t requested;  /* port_reset() ran before this reset */
};

__attribute__((section(".noinit"))) static struct reset_record reset_record;

/* Written by the debugger or QEMU (-device loader,addr=<seed>,data=...,data-len=8) before
 * the first instruction runs; zero without one. */
__attribute__((section(".seed"))) static volatile uint64_t boot_seed;

static enum mcu_reset_cause boot_cause;

static void reset_init(void)
{
	if (reset_record.magic != RESET_MAGIC) {
		reset_record.magic = RESET_MAGIC;
		reset_record.count = 0;
		boot_cause = MCU_RESET_POWER_ON;
	} else if (reset_record.requested && reset_record.cause < MCU_RESET_CAUSE_COUNT) {
		boot_cause = (enum mcu_reset_cause)reset_record.cause;
	} else {
		/* A reset nobody asked for (the reset pin, a debugger): as if powered on. */
		reset_record.count++;
		boot_cause = MCU_RESET_POWER_ON;
	}
	reset_record.requested = 0;
}

enum mcu_reset_cause port_reset_cause(void) { return boot_cause; }

uint32_t port_reset_count(void) { return reset_record.count; }

void port_reset(enum mcu_reset_cause cause)
{
	irq_disable();
	reset_record.cause = (uint32_t)cause;
	reset_record.requested = 1;
	reset_record.count++;
	__asm__ volatile("dsb" ::: "memory");
	SCB_AIRCR = AIRCR_SYSRESETREQ;
	for (;;) {
	}
}

void HardFault_Handler(void)
{
	/* The device's own bug: reset as the hardware watchdog would. */
	port_reset(MCU_RESET_WATCHDOG);
}

uint64_t port_entropy(void)
{
	/* The seed, mixed with the counter's phase (QEMU and real parts reach here after a
	 * varying time), and by the core with the reset count. */
	return boot_seed ^ ((uint64_t)board_counter_read() << 32);
}

/* -- interrupts ---------------------------------------------------------------------------- */

/* The mask as it was before the outermost lock: unlocking restores it, so that a lock
 * taken in an interrupt, or before interrupts are first enabled, leaves them as found. */
static uint32_t lock_primask;
static uint32_t lock_depth;

void port_irq_lock(void)
{
	uint32_t primask = irq_save();
	if (lock_depth++ == 0u) {
		lock_primask = primask;
	}
}

void port_irq_unlock(void)
{
	if (--lock_depth == 0u) {
		irq_restore(lock_primask);
	}
}

/* -- main ------------------------------------------------------------------------------------ */

int main(void)
{
	/* No interrupt before the device has booted: a byte received earlier would be
	 * queued, then dropped by device_boot(). */
	irq_disable();
	reset_init();
	clock_init();
	board_uart_init();
	plant_init(port_now_us());
	device_boot();
	irq_enable();
	for (;;) {
		uint64_t now_us = port_now_us();
		plant_poll(now_us);
		uint64_t next_us = device_poll(now_us);
		uint64_t plant_us = plant_next_deadline();
		next_us = plant_us < next_us ? plant_us : next_us;
		/* Sleep until the next deadline or the end of a frame (a 0x00 received): a
		 * partial frame is nothing to act on, so the bytes before it wake the loop only
		 * to be put back to sleep. WFI wakes on an interrupt pending with interrupts
		 * masked, so none is missed between the check and the sleep. */
		for (;;) {
			irq_disable();
			uint64_t now = port_now_us();
			if (uart_rx_seen || now >= next_us) {
				uart_rx_seen = false;
				irq_enable();
				break;
			}
			alarm_in(next_us - now);
			wait_for_interrupt();
			irq_enable(); /* the pending interrupt runs here */
		}
	}
}
