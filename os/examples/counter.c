/* Counter in C on the tile runtime (as counter.py): tag ADD adds words[0] and replies the total; READ replies it;
 * RESET clears it; any other tag fails the assert. Every reply is (total, requests so far). */
#include <tessera.h>

enum { ADD = 1, READ = 2, RESET = 3 };

/* The state, in the snapshot region. Unsigned, because C's signed overflow is undefined and Python's wraps. */
TESSERA_STATE struct {
    uint32_t count;
    uint32_t requests;
} counter;

void handle(const tessera_msg *msg)
{
    counter.requests++;
    if (msg->tag == ADD)
        counter.count += (uint32_t)msg->words[0];
    else if (msg->tag == RESET)
        counter.count = 0;
    else
        tessera_assert(msg->tag == READ);
    tessera_reply(msg, (int32_t)counter.count, (int32_t)counter.requests);
}
