/*
 * Every bound of the reference device, in one place.
 *
 * The device allocates nothing at run time: each buffer below is a static array of the
 * size stated here, and what does not fit is refused in a way the protocol allows
 * (see the comment of each). Figures of the board itself (link timings, watchdog,
 * mechanics) come from the board file, through the generated "board_params.h".
 */
#ifndef PRINTER_MCU_CONFIG_H
#define PRINTER_MCU_CONFIG_H

#include "board_params.h"

/* -- protocol (docs/protocol.md) ---------------------------------------------------- */

#define MCU_PROTOCOL_VERSION 0x10u /* 1.0: major << 4 | minor */
#define MCU_FRAME_OVERHEAD 16u     /* 12-byte header + CRC-32 */

/* The longest payload we accept, advertised in HELLO: the minimum the protocol allows
 * (every HELLO fits in it, and the host's requests are far shorter). */
#define MCU_RX_PAYLOAD_MAX 512u

/* The receive buffer: the largest encoded frame of MCU_RX_PAYLOAD_MAX (COBS adds one
 * byte per 254 and one more). A longer chunk is reported TOO_LONG and skipped. */
#define MCU_RX_CHUNK_MAX                                                                  \
	(MCU_FRAME_OVERHEAD + MCU_RX_PAYLOAD_MAX + (MCU_FRAME_OVERHEAD + MCU_RX_PAYLOAD_MAX) / 254u + 1u)

/* The longest payload this device ever sends (a board.snapshot with two 64-byte display
 * rows, MCU_IMAGING_MAX pending and MCU_IMAGED_KEPT imaged handles). Below the host's
 * minimum max_payload. */
#define MCU_TX_PAYLOAD_MAX 512u

/* The longest EVENT payload this device sends (an imaging failure with its reason). */
#define MCU_EVENT_PAYLOAD_MAX 128u
#define MCU_EVENT_ERROR_BYTES 48u /* a port's failure text is cut to this */

/* Data frames sent and not yet acknowledged, plus those waiting for the window, are
 * kept for retransmission in one FIFO of payload bytes and one of frame records. A
 * REQUEST is taken only while both have room for its answer (MCU_TX_PAYLOAD_MAX bytes,
 * one record); otherwise it is dropped unacknowledged, as if lost, and the host's
 * retransmission brings it again. An event that finds no room (MCU_EVENT_PAYLOAD_MAX
 * bytes, one record) ends the session: the host's resynchronisation (board.snapshot)
 * then tells it the net change. */
#define MCU_TX_RING_BYTES 4096u
#define MCU_TX_FRAMES_MAX 48u

#if BOARD_WINDOW < 1 || BOARD_WINDOW > MCU_TX_FRAMES_MAX
#error "the board file's [serial] window must be 1 ... MCU_TX_FRAMES_MAX"
#endif

/* Frames we accept unacknowledged (advertised in HELLO; the board file's [serial]
 * window). Go-back-N keeps nothing out of order, so this costs no receive memory; what
 * we send unacknowledged is the smaller of both ends' windows. */
#define MCU_WINDOW BOARD_WINDOW

/* Bytes the UART's receive interrupt may run ahead of the main loop (a power of two).
 * An overrun loses bytes: the frame's CRC fails and the link repairs it. */
#define MCU_RX_RING_BYTES 1024u

/* Interrupts (input edges, imaging progress) waiting for the main loop (a power of
 * two). An overflow ends the session, like an event that finds no room. */
#define MCU_IRQ_QUEUE 32u

/* CBOR: maps and arrays nested deeper than this are a malformed payload (zcbor's skip
 * of unknown values recurses once per level, so this bounds the stack). */
#define MCU_CBOR_MAX_DEPTH 6u
#define MCU_ZCBOR_BACKUPS 4u /* the deepest shape decoded or encoded: result, map, map */

/* -- board ----------------------------------------------------------------------------- */

#define MCU_IMAGING_MAX 16u       /* imaging handles pending at once (NO_RESOURCES past it) */
/* The handles imaged most recently that board.snapshot reports ("imaged"): twice what
 * may be pending at once, so every handle completed since the last session ended is
 * there for the host's resynchronisation (its "done" event may have been lost). */
#define MCU_IMAGED_KEPT (2u * MCU_IMAGING_MAX)
#define MCU_DISPLAY_COLUMNS 16u   /* characters per row; longer rows are cut, as the host does */
#define MCU_DISPLAY_ROW_BYTES 64u /* UTF-8 bytes of MCU_DISPLAY_COLUMNS characters at most */
#define MCU_ADC_SAMPLE_US 1000u   /* armed window comparators are sampled this often */

/* -- link timings (from the board file's [serial], made safe for the port's line) ------ */

/* The line's rate in baud, set by the port (0: a pty or a socket, which cost nothing per
 * byte). On a UART a window of frames takes time on the wire each way, so the
 * retransmission timeout and the silence that ends a session grow to fit it, by the rule
 * the host uses (hal/serial/_timings.py: a window of typical frames, twice, plus 20 ms). */
#ifndef MCU_LINE_BAUD
#define MCU_LINE_BAUD 0u
#endif
#define MCU_TYPICAL_FRAME_BYTES (256u + 24u)
#define MCU_LINE_RTO_US                                                                   \
	(MCU_LINE_BAUD == 0u ? 0u                                                         \
			     : 2ull * MCU_WINDOW * MCU_TYPICAL_FRAME_BYTES * 10u * 1000000u /     \
					   (MCU_LINE_BAUD == 0u ? 1u : MCU_LINE_BAUD) +           \
				       20000u)

#define MCU_RTO_US (BOARD_RETRANSMIT_US > MCU_LINE_RTO_US ? BOARD_RETRANSMIT_US : MCU_LINE_RTO_US)
#define MCU_DEAD_AFTER_US                                                                 \
	(BOARD_LINK_DEAD_US > 4u * MCU_RTO_US ? BOARD_LINK_DEAD_US : 4u * MCU_RTO_US)
#define MCU_HEARTBEAT_US                                                                  \
	(BOARD_HEARTBEAT_US < MCU_DEAD_AFTER_US / 3u ? BOARD_HEARTBEAT_US : MCU_DEAD_AFTER_US / 3u)
/* Acks ride on the answers, which go out in the same turn of the main loop; a pure ACK
 * goes out at the end of the turn that needed one. */
#define MCU_ACK_DELAY_US 0u

/* What the device calls itself in HELLO. */
#define MCU_FIRMWARE_VERSION "0.1.0"

#endif
