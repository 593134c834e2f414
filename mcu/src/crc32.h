/* CRC-32 of zlib, Ethernet and PNG (docs/protocol.md, "Frames"). */
#ifndef MCU_CRC32_H
#define MCU_CRC32_H

#include <stddef.h>
#include <stdint.h>

#define CRC32_INIT 0xFFFFFFFFu
/* The register after running the CRC over a frame and its own stored CRC. */
#define CRC32_RESIDUE 0xDEBB20E3u

/* Continue a CRC register over `len` bytes (start from CRC32_INIT). */
uint32_t crc32_update(uint32_t crc, const uint8_t *data, size_t len);

/* The CRC-32 of a register: final XOR. */
static inline uint32_t crc32_final(uint32_t crc) { return crc ^ 0xFFFFFFFFu; }

#endif
