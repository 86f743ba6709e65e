/* Echo in C on the tile runtime: replies to every message with the same words (as echo.py). */
#include <tessera.h>

void handle(const tessera_msg *msg)
{
    tessera_send_words(msg->sender, msg->tag, msg->words, msg->length);
}
