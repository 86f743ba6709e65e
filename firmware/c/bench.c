/* A small integer benchmark for measuring cycles per instruction on a tile.
 *
 * Two phases with different instruction mixes: a sieve of Eratosthenes (byte loads/stores, branches, one
 * multiply through libgcc) and `bench_rounds` rounds of xorshift32 mixing into a 16-word table (shifts, ALU,
 * word/halfword/byte loads and stores, data-dependent branches). main returns a checksum of both, also left in
 * bench_result; bench_rounds is initialised data, so a host may patch it in the image before loading.
 */
#include <stdint.h>

uint32_t bench_rounds = 200;
uint32_t bench_result;
uint8_t sieve_composite[400];
/* One table seen at three widths (union punning is defined in GCC, unlike pointer casts). */
union {
    uint32_t words[16];
    uint16_t halves[32];
    uint8_t bytes[64];
} mix_table;

static uint32_t count_primes(void)
{
    const uint32_t limit = sizeof sieve_composite;
    uint32_t count = 0;
    for (uint32_t n = 2; n < limit; n++) {
        if (sieve_composite[n])
            continue;
        count++;
        for (uint32_t multiple = n * n; multiple < limit; multiple += n)
            sieve_composite[multiple] = 1;
    }
    return count;
}

static uint32_t mix(uint32_t rounds)
{
    uint32_t x = 0x12345678u;
    uint32_t acc = 0;
    for (uint32_t r = 0; r < rounds; r++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        mix_table.words[x & 15] += x;
        if (x & 0x100)
            acc += mix_table.words[(x >> 4) & 15];
        else
            acc ^= x >> 3;
        mix_table.halves[(x >> 8) & 31] ^= (uint16_t)acc;
        mix_table.bytes[(x >> 16) & 63] += (uint8_t)r;
        if ((int32_t)acc < 0)
            acc = (acc << 1) | (acc >> 31);
    }
    for (int i = 0; i < 16; i++)
        acc ^= mix_table.words[i] + (uint32_t)i;
    return acc;
}

int main(void)
{
    uint32_t primes = count_primes();
    bench_result = (primes << 16) ^ mix(bench_rounds);
    return (int)bench_result;
}
