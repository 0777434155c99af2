/* cmd_chat.c: `rwkv7 chat` (being written; this placeholder only reports that). */
#include <stdio.h>

#include "commands.h"

int cmd_chat(int argc, char **argv) {
    fprintf(stderr, "rwkv7 chat: not available in this build\n");
    return 2;
}
