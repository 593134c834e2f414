/* BBC micro:bit (nRF51822, Cortex-M0 at 16 MHz): UART0, receive by interrupt, and TIMER0
 * as the device's clock. QEMU's `-M microbit` models this UART with a 6-byte receive
 * FIFO, at no particular baud. */
#include <stddef.h>

#include "cortex_m.h"
#include "printer_mcu/device.h"
#include "printer_mcu/port.h"

#define UART0 0x40002000u
#define UART_STARTRX REG32(UART0 + 0x000u)
#define UART_STARTTX REG32(UART0 + 0x008u)
#define UART_RXDRDY REG32(UART0 + 0x108u)
#define UART_TXDRDY REG32(UART0 + 0x11Cu)
#define UART_INTENSET REG32(UART0 + 0x304u)
#define UART_ENABLE REG32(UART0 + 0x500u)
#define UART_PSELTXD REG32(UART0 + 0x50Cu)
#define UART_PSELRXD REG32(UART0 + 0x514u)
#define UART_RXD REG32(UART0 + 0x518u)
#define UART_TXD REG32(UART0 + 0x51Cu)
#define UART_BAUDRATE REG32(UART0 + 0x524u)

#define UART0_IRQ 2u
#define INTEN_RXDRDY (1u << 2)
#define BAUD_115200 0x01D7E000u
#define PIN_TX 24u /* the micro:bit's USB serial pins */
#define PIN_RX 25u

#define TIMER0 0x40008000u
#define TIMER_START REG32(TIMER0 + 0x000u)
#define TIMER_CAPTURE0 REG32(TIMER0 + 0x040u)
#define TIMER_MODE REG32(TIMER0 + 0x504u)
#define TIMER_BITMODE REG32(TIMER0 + 0x508u)
#define TIMER_PRESCALER REG32(TIMER0 + 0x510u)
#define TIMER_CC0 REG32(TIMER0 + 0x540u)

const uint32_t board_cpu_hz = 16000000u;
const uint32_t board_counter_hz = 1000000u;

void board_counter_init(void)
{
	TIMER_MODE = 0u;      /* timer */
	TIMER_BITMODE = 3u;   /* 32 bits */
	TIMER_PRESCALER = 4u; /* 16 MHz / 2^4 = 1 MHz */
	TIMER_START = 1u;
}

uint32_t board_counter_read(void)
{
	TIMER_CAPTURE0 = 1u;
	return TIMER_CC0;
}
volatile bool uart_rx_seen;

void board_uart_init(void)
{
	UART_PSELTXD = PIN_TX;
	UART_PSELRXD = PIN_RX;
	UART_BAUDRATE = BAUD_115200;
	UART_ENABLE = 4u;
	UART_STARTTX = 1u;
	UART_STARTRX = 1u;
	UART_INTENSET = INTEN_RXDRDY;
	NVIC_ISER = 1u << UART0_IRQ;
}

void IRQ2_Handler(void)
{
	/* Clear the event before reading: reading RXD raises it again while the FIFO holds
	 * more. */
	while (UART_RXDRDY) {
		UART_RXDRDY = 0;
		uint8_t byte = (uint8_t)UART_RXD;
		device_uart_rx_isr(byte);
		uart_rx_seen = uart_rx_seen || byte == 0; /* a frame ends: wake the main loop */
	}
}

void port_uart_write(const uint8_t *data, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		UART_TXD = data[i];
		while (!UART_TXDRDY) {
		}
		UART_TXDRDY = 0;
	}
}

void port_uart_flush(void) {}
