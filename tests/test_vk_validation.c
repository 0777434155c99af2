/* test_vk_validation.c: the Vulkan backend under the Khronos validation layer with synchronization
 * validation (RWKV7_VK_VALIDATION=1, vulkan/instance.c): `test_ops -b vulkan` (every op, type and
 * shape, graph record/replay; about 4 s on lavapipe under the layer) in a child process, then one
 * small fixture's logits (prefill, decode, chunked == serial) in this process. Under the layer
 * every error is printed and makes the process exit 1 at exit, so the child's status and ours
 * carry it. Skips (77) where no Vulkan device or no validation layer is present. */
#define _POSIX_C_SOURCE 200809L /* setenv */
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "backend.h"
#include "model_check.h"

/* Arguments for the child test_ops: all of its Vulkan cases, or those whose name matches REGEX
 * when this test is run as `test_vk_validation -p REGEX` (CTest's variants under other settings). */
#define RWKV7_VK_VALIDATION_ARGS "-b vulkan"

int main(int argc, char **argv) {
    const char *regex = argc == 3 && !strcmp(argv[1], "-p") ? argv[2] : NULL;
    if ((argc != 1 && !regex) || (regex && strchr(regex, '\''))) {
        fprintf(stderr, "usage: test_vk_validation [-p REGEX]   (REGEX without a single quote)\n");
        return 2;
    }
    setenv("RWKV7_VK_VALIDATION", "1", 1);
    struct rwkv7_backend *be = NULL;
    if (rwkv7_backend_init("vulkan", NULL, 1, true, &be) != RWKV7_OK)
        TEST_SKIP("vulkan with the validation layer cannot start here: %s", rwkv7_last_error());
    fprintf(stderr, "vulkan: %s\n", be->desc);
    rwkv7_backend_free(be);

    /* test_ops sits next to this binary in the build tree. */
    char cmd[2048];
    const char *slash = strrchr(argv[0], '/');
    int dir_len = slash ? (int)(slash - argv[0]) : 1;
    snprintf(cmd, sizeof cmd, "'%.*s/test_ops' %s%s%.1000s%s", dir_len, slash ? argv[0] : ".", RWKV7_VK_VALIDATION_ARGS,
             regex ? " -p '" : "", regex ? regex : "", regex ? "'" : "");
    fprintf(stderr, "running: %s\n", cmd);
    int rc = system(cmd);
    CHECK(rc != -1 && WIFEXITED(rc) && WEXITSTATUS(rc) == 0,
          "test_ops under the validation layer failed (status %d): see the 'vulkan validation' lines above", rc);

    static const char *const types[] = {"Q4_0"};
    check_family("vulkan", "tiny-rwkv7-834K", "tiny-rwkv7-834K", "tokens.txt", types, 1);
    return test_finish("test_vk_validation");
}
