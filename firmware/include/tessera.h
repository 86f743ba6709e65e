/* tessera.h: the tile runtime ABI for C services (docs/services.md, "Services in C and assembly").
 *
 * A C service defines `void handle(const tessera_msg *msg)` and optionally `void init(void)`; it is compiled with
 * `riscv64-unknown-elf-gcc -march=rv32i -mabi=ilp32` and linked with firmware/c/service.ld right after the tile
 * runtime, which starts the tile, calls init once and then handle for every message. handle returns to the
 * runtime's receive loop. Nothing in here allocates: every call is either one custom-0 message instruction
 * (inline) or a call into the runtime (rt_*), so a service is exactly as small as its own code.
 *
 * The build defines TILE_MEM_BYTES, HOST_NODE and NODE_<name> (the node address of each name in the manifest's
 * `sends`) on the compiler's command line.
 */
#ifndef TESSERA_H
#define TESSERA_H

#include <stdint.h>

#define TESSERA_MAX_WORDS 4             /* payload words in one message */
#define TESSERA_HOST_NODE 127           /* the host's node address */
#define TESSERA_LOG_TAG 0xFFFFu         /* tag of log messages to the host */
#define TESSERA_SNAPSHOT_TAG 0xFFFDu    /* tag of snapshot messages to the host */
#define TESSERA_SNAPSHOT_COMMIT 0xFFFFFFFFu

/* Why a service stopped with cause ASSERTION (a0 when the tile traps): tessera.os.service_api.FaultReason. */
enum tessera_fault_reason {
    TESSERA_FAULT_ASSERT = 1,
    TESSERA_FAULT_DIVIDE_BY_ZERO = 2,
    TESSERA_FAULT_INDEX = 3,
    TESSERA_FAULT_NO_MESSAGE = 4,
    TESSERA_FAULT_STACK = 5,
};

/* A received message as the runtime stores it: length 0 means "no message" (a receive that timed out). */
typedef struct {
    uint32_t sender;                    /* node address of the sender */
    uint32_t tag;                       /* 0 .. 65535 */
    uint32_t length;                    /* payload words, 1 .. 4 (0: none) */
    int32_t words[TESSERA_MAX_WORDS];
} tessera_msg;

/* The service's entry points, called by the runtime. init is optional. */
void init(void);
void handle(const tessera_msg *msg);

/* Runtime routines (firmware/runtime.s; addresses in firmware/c/runtime.ld). They follow the ilp32 convention. */
tessera_msg *rt_receive(tessera_msg *record);                          /* wait for the next message */
tessera_msg *rt_receive_timeout(tessera_msg *record, uint32_t cycles); /* ... length 0 after `cycles` (< 2**24) */
void rt_sleep(int32_t cycles);                                          /* busy-wait at least `cycles` */
void rt_fault(uint32_t reason) __attribute__((noreturn));              /* stop the tile: cause ASSERTION */

/* Put the fields of a state object in the snapshot region: `TESSERA_STATE int32_t table[24];` */
#define TESSERA_STATE __attribute__((section(".tessera_state")))
extern uint32_t __state_start[], __state_end[];

/* -- message instructions (custom-0, docs/network.md) ---------------------------------------------------- */

static inline void tessera_put(int32_t word)
{
    __asm__ volatile(".insn r CUSTOM_0, 0, 0, x0, %0, x0" : : "r"(word) : "memory");
}

static inline void tessera_send_staged(uint32_t node, uint32_t tag)
{
    __asm__ volatile(".insn r CUSTOM_0, 1, 0, x0, %0, %1" : : "r"(node), "r"(tag) : "memory");
}

static inline void tessera_send_words(uint32_t node, uint32_t tag, const int32_t *words, unsigned count)
{
    for (unsigned i = 0; i < count; i++)
        tessera_put(words[i]);
    tessera_send_staged(node, tag);
}

#define TESSERA_WORDS(...) ((const int32_t[]){__VA_ARGS__}), (sizeof((int32_t[]){__VA_ARGS__}) / sizeof(int32_t))

/* send(node, tag, w1, ...): 1..4 words to a node address (NODE_<name> for a name in `sends`). */
#define tessera_send(node, tag, ...) tessera_send_words((node), (tag), TESSERA_WORDS(__VA_ARGS__))
/* reply(msg, w1, ...): to the sender of msg, with its tag. */
#define tessera_reply(msg, ...) tessera_send_words((msg)->sender, (msg)->tag, TESSERA_WORDS(__VA_ARGS__))
/* log(w1, ...): to the host's log. */
#define tessera_log(...) tessera_send_words(TESSERA_HOST_NODE, TESSERA_LOG_TAG, TESSERA_WORDS(__VA_ARGS__))
/* call(node, tag, record, w1, ...): send, then wait for the next message (the reply) into record. */
#define tessera_call(node, tag, record, ...) \
    (tessera_send((node), (tag), __VA_ARGS__), rt_receive(record))

/* assert: a false condition stops the tile with cause ASSERTION, reason 1, as a Python service's assert. */
#define tessera_assert(condition) \
    do { if (!(condition)) rt_fault(TESSERA_FAULT_ASSERT); } while (0)

/* now(): the low 32 bits of the cycle counter; me(): this tile's node address (CSRs, read-only). */
static inline int32_t tessera_now(void)
{
    int32_t value;
    __asm__ volatile(".insn i 0x73, 2, %0, x0, -1024" : "=r"(value));  /* csrrs value, cycle (0xc00), zero */
    return value;
}

static inline uint32_t tessera_me(void)
{
    uint32_t value;
    __asm__ volatile(".insn i 0x73, 2, %0, x0, -236" : "=r"(value));   /* csrrs value, mhartid (0xf14), zero */
    return value;
}

/* snapshot(): send the TESSERA_STATE objects to the host, as the Python `snapshot()` does: (address, up to 3
 * words) messages with TESSERA_SNAPSHOT_TAG, then (TESSERA_SNAPSHOT_COMMIT, words). */
static inline void tessera_snapshot(void)
{
    const uintptr_t start = (uintptr_t)__state_start, end = (uintptr_t)__state_end;
    uintptr_t address = start;
    while (address < end) {
        tessera_put((int32_t)address);
        for (unsigned i = 0; i < TESSERA_MAX_WORDS - 1 && address < end; i++, address += 4)
            tessera_put(*(const volatile int32_t *)address);
        tessera_send_staged(TESSERA_HOST_NODE, TESSERA_SNAPSHOT_TAG);
    }
    tessera_put((int32_t)TESSERA_SNAPSHOT_COMMIT);
    tessera_put((int32_t)((end - start) / 4));
    tessera_send_staged(TESSERA_HOST_NODE, TESSERA_SNAPSHOT_TAG);
}

#endif
