/* reduce.glsl: workgroup sum over RED_WG invocations through shared memory (a tree; used by the
 * row kernels whose reductions are a small share of their time). All invocations must call it. */
shared float red_buf[RED_WG];
float wg_sum(float v) {
    uint tid = gl_LocalInvocationID.x;
    red_buf[tid] = v;
    barrier();
    for (uint w = RED_WG / 2u; w > 0u; w >>= 1) {
        if (tid < w) red_buf[tid] += red_buf[tid + w];
        barrier();
    }
    float s = red_buf[0];
    barrier();
    return s;
}
