/* cmd_bench.c: `rwkv7 bench` (being written; this placeholder only reports that). */
#include <stdio.h>

#include "commands.h"

int cmd_bench(int argc, char **argv) {
    fprintf(stderr, "rwkv7 bench: not available in this build\n");
    return 2;
}
