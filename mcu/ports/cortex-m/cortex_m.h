/* The few Cortex-M core registers the ports use (ARMv6-M and ARMv7-M alike), and what a
 * Cortex-M port provides to port_cortex_m.c. */
#ifndef MCU_CORTEX_M_H
#define MCU_CORTEX_M_H

#include <stdbool.h>
#include <stdint.h>

#define REG32(addr) (*(volatile uint32_t *)(addr))

#define SYST_CSR REG32(0xE000E010u)
#define SYST_RVR REG32(0xE000E014u)
#define SYST_CVR REG32(0xE000E018u)
#define SCB_AIRCR REG32(0xE000ED0Cu)
#define NVIC_ISER REG32(0xE000E100u)

#define AIRCR_SYSRESETREQ (0x05FA0000u | (1u << 2))

static inline void irq_disable(void) { __asm__ volatile("cpsid i" ::: "memory"); }
static inline void irq_enable(void) { __asm__ volatile("cpsie i" ::: "memory"); }
static inline void wait_for_interrupt(void) { __asm__ volatile("wfi" ::: "memory"); }

/* -- provided by each board's uart.c ----------------------------------------------------- */

/* The core clock, for the SysTick. */
extern const uint32_t board_cpu_hz;

/* A free-running 32-bit up-counter at board_counter_hz (a multiple of 1 MHz): the
 * device's time. */
extern const uint32_t board_counter_hz;
void board_counter_init(void);
uint32_t board_counter_read(void);

/* Start the UART: receive interrupt on, calling device_uart_rx_isr() for each byte and
 * setting uart_rx_seen at each 0x00 (the end of a frame). */
void board_uart_init(void);

/* Set by the receive interrupt; the main loop clears it before it sleeps. */
extern volatile bool uart_rx_seen;

#endif
