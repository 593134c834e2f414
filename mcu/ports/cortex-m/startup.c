/* Vector table and reset handler for the Cortex-M ports: .data copied from flash, .bss
 * zeroed (.noinit and .seed left alone), then main(). Interrupts 0..31 are weak aliases
 * of a handler that does nothing; a board's uart.c defines the one it uses. */
#include <stdint.h>

extern uint32_t __data_load__, __data_start__, __data_end__, __bss_start__, __bss_end__;
extern uint32_t __stack_top__;

int main(void);
void Reset_Handler(void);
void HardFault_Handler(void);
void SysTick_Handler(void);

static void unused_handler(void) {}

#define WEAK_IRQ(n) void IRQ##n##_Handler(void) __attribute__((weak, alias("unused_handler")))
WEAK_IRQ(0); WEAK_IRQ(1); WEAK_IRQ(2); WEAK_IRQ(3); WEAK_IRQ(4); WEAK_IRQ(5); WEAK_IRQ(6);
WEAK_IRQ(7); WEAK_IRQ(8); WEAK_IRQ(9); WEAK_IRQ(10); WEAK_IRQ(11); WEAK_IRQ(12); WEAK_IRQ(13);
WEAK_IRQ(14); WEAK_IRQ(15); WEAK_IRQ(16); WEAK_IRQ(17); WEAK_IRQ(18); WEAK_IRQ(19);
WEAK_IRQ(20); WEAK_IRQ(21); WEAK_IRQ(22); WEAK_IRQ(23); WEAK_IRQ(24); WEAK_IRQ(25);
WEAK_IRQ(26); WEAK_IRQ(27); WEAK_IRQ(28); WEAK_IRQ(29); WEAK_IRQ(30); WEAK_IRQ(31);

typedef void (*vector)(void);

__attribute__((section(".vectors"), used)) static const vector vectors[16 + 32] = {
	(vector)&__stack_top__, Reset_Handler, unused_handler, HardFault_Handler,
	unused_handler, unused_handler, unused_handler, 0, 0, 0, 0,
	unused_handler, unused_handler, 0, unused_handler, SysTick_Handler,
	IRQ0_Handler, IRQ1_Handler, IRQ2_Handler, IRQ3_Handler, IRQ4_Handler, IRQ5_Handler,
	IRQ6_Handler, IRQ7_Handler, IRQ8_Handler, IRQ9_Handler, IRQ10_Handler, IRQ11_Handler,
	IRQ12_Handler, IRQ13_Handler, IRQ14_Handler, IRQ15_Handler, IRQ16_Handler,
	IRQ17_Handler, IRQ18_Handler, IRQ19_Handler, IRQ20_Handler, IRQ21_Handler,
	IRQ22_Handler, IRQ23_Handler, IRQ24_Handler, IRQ25_Handler, IRQ26_Handler,
	IRQ27_Handler, IRQ28_Handler, IRQ29_Handler, IRQ30_Handler, IRQ31_Handler,
};

void Reset_Handler(void)
{
	/* Word loops written out: with -nostdlib GCC would turn them into memcpy/memset. */
	volatile uint32_t *src = &__data_load__;
	for (volatile uint32_t *dst = &__data_start__; dst < &__data_end__;) {
		*dst++ = *src++;
	}
	for (volatile uint32_t *dst = &__bss_start__; dst < &__bss_end__;) {
		*dst++ = 0;
	}
	main();
	for (;;) {
	}
}
