/* CRC-32 (IEEE 802.3: reflected, polynomial 0xEDB88320, as zlib.crc32) of a fixed message.
 *
 * Bit by bit rather than through a 1 KB table: tile memory is small. The result is main's return value
 * (a0 at the final ECALL) and is also left in crc_result.
 */
#include <stdint.h>

const char crc_message[] = "Tessera: many small RV32I tiles, each with private memory and a hardware mailbox.";
uint32_t crc_result;

static uint32_t crc32(const uint8_t *data, uint32_t length)
{
    uint32_t crc = 0xFFFFFFFFu;
    for (uint32_t i = 0; i < length; i++) {
        crc ^= data[i];
        for (int bit = 0; bit < 8; bit++)
            crc = (crc >> 1) ^ (0xEDB88320u & -(crc & 1u));
    }
    return ~crc;
}

int main(void)
{
    crc_result = crc32((const uint8_t *)crc_message, sizeof crc_message - 1);
    return (int)crc_result;
}
