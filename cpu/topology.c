/* topology.c: the CPU backend's view of the machine: physical cores (its default thread count).
 * Hyper-threads share a core's load/store units, so a bandwidth-bound decode gets slower rather
 * than faster with them; the default is one thread per physical core. */
#define _DEFAULT_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"

int rwkv7_n_physical_cores(void) {
    /* Count distinct (physical id, core id) pairs; hyper-threads share a core and slow a
     * bandwidth-bound decode down rather than up. Falls back to the online CPU count. */
    FILE *f = fopen("/proc/cpuinfo", "r");
    int n = 0;
    if (f) {
        char line[256];
        int phys = 0, pairs[1024][2], np = 0;
        while (fgets(line, sizeof line, f)) {
            if (!strncmp(line, "physical id", 11)) phys = atoi(strchr(line, ':') + 1);
            if (!strncmp(line, "core id", 7)) {
                int core = atoi(strchr(line, ':') + 1), seen = 0;
                for (int i = 0; i < np; i++) seen |= pairs[i][0] == phys && pairs[i][1] == core;
                if (!seen && np < 1024) {
                    pairs[np][0] = phys;
                    pairs[np][1] = core;
                    np++;
                }
            }
        }
        fclose(f);
        n = np;
    }
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    if (n <= 0 || (online > 0 && n > online)) n = online > 0 ? (int)online : 1;
    return n;
}
