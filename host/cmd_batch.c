/* cmd_batch.c: `rwkv7 batch` (being written; this placeholder only reports that). */
#include <stdio.h>

#include "commands.h"

int cmd_batch(int argc, char **argv) {
    fprintf(stderr, "rwkv7 batch: not available in this build\n");
    return 2;
}
