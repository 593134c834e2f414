/* ARM MPS2 with the AN385 FPGA image (Cortex-M3 at 25 MHz): CMSDK APB UART0, receive by
 * interrupt, and CMSDK APB TIMER0 as the device's clock. The CMSDK UART holds a single
 * received byte; QEMU offers the next one only once that is read. */
#include <stddef.h>

#include "cortex_m.h"
#include "printer_mcu/device.h"
#include "printer_mcu/port.h"

#define UART0 0x40004000u
#define UART_DATA REG32(UART0 + 0x000u)
#define UART_STATE REG32(UART0 + 0x004u)
#define UART_CTRL REG32(UART0 + 0x008u)
#define UART_INTSTATUS REG32(UART0 + 0x00Cu)
#define UART_BAUDDIV REG32(UART0 + 0x010u)

#define UART0_RX_IRQ 0u
#define STATE_TXFULL (1u << 0)
#define STATE_RXFULL (1u << 1)
#define CTRL_TX_EN (1u << 0)
#define CTRL_RX_EN (1u << 1)
#define CTRL_RX_INTEN (1u << 3)
#define INT_RX (1u << 1)

#define TIMER0 0x40000000u
#define TIMER_CTRL REG32(TIMER0 + 0x000u)
#define TIMER_VALUE REG32(TIMER0 + 0x004u)
#define TIMER_RELOAD REG32(TIMER0 + 0x008u)

/* TIMER1, unused by the device: see nudge_qemu(). */
#define TIMER1 0x40001000u
#define TIMER1_CTRL REG32(TIMER1 + 0x000u)
#define TIMER1_VALUE REG32(TIMER1 + 0x004u)
#define TIMER1_RELOAD REG32(TIMER1 + 0x008u)
#define NUDGE_CYCLES 250u /* 10 us */

const uint32_t board_cpu_hz = 25000000u;
const uint32_t board_counter_hz = 25000000u;

void board_counter_init(void)
{
	TIMER_RELOAD = 0xFFFFFFFFu;
	TIMER_VALUE = 0xFFFFFFFFu;
	TIMER_CTRL = 1u; /* enabled, counting the 25 MHz peripheral clock, no interrupt */
}

uint32_t board_counter_read(void)
{
	return 0xFFFFFFFFu - TIMER_VALUE; /* it counts down */
}
volatile bool uart_rx_seen;

/* QEMU's CMSDK UART model offers the next received byte only when its event loop next
 * looks at the line, and reading DATA does not tell it to look (the nRF51 model's RXD
 * does): at rest that is the next timer due, so bytes would trickle in at the pace of
 * unrelated timers. Restarting a timer of our own due in 10 us makes it look. On real
 * hardware this only reloads a timer nobody uses. */
static void nudge_qemu(void)
{
	TIMER1_VALUE = NUDGE_CYCLES;
}

void board_uart_init(void)
{
	TIMER1_RELOAD = 0xFFFFFFFFu;
	TIMER1_VALUE = 0xFFFFFFFFu;
	TIMER1_CTRL = 1u; /* enabled, no interrupt */
	UART_BAUDDIV = 25000000u / 115200u;
	UART_CTRL = CTRL_TX_EN | CTRL_RX_EN | CTRL_RX_INTEN;
	NVIC_ISER = 1u << UART0_RX_IRQ;
}

void IRQ0_Handler(void)
{
	/* Clear the interrupt before draining: a byte arriving after the last read raises
	 * it again, instead of being stranded behind a cleared flag. */
	UART_INTSTATUS = INT_RX;
	while (UART_STATE & STATE_RXFULL) {
		uint8_t byte = (uint8_t)UART_DATA;
		device_uart_rx_isr(byte);
		uart_rx_seen = uart_rx_seen || byte == 0; /* a frame ends: wake the main loop */
	}
	nudge_qemu();
}

void port_uart_write(const uint8_t *data, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		while (UART_STATE & STATE_TXFULL) {
		}
		UART_DATA = data[i];
	}
}

void port_uart_flush(void) {}
