/* bench_svg.c: the --plot chart of `rwkv7 bench`: two bar panels (prefill and decode tok/s), one
 * group of bars per model type, one bar colour per series (backend, threads and test), with a
 * labelled y axis, grid, value labels and a legend. Plain SVG 1.1 text, so any browser shows it. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "bench_out.h"

#define MAX_GROUPS 64
#define MAX_SERIES 16
#define W 960.0
#define PANEL_H 330.0
#define LEFT 80.0
#define RIGHT 220.0 /* legend */
#define TOP 40.0
#define BOTTOM 60.0

static const char *const palette[MAX_SERIES] = {
    "#4878d0", "#ee854a", "#6acc64", "#d65f5f", "#956cb4", "#8c613c", "#dc7ec0", "#797979",
    "#d5bb67", "#82c6e2", "#1f3b73", "#a6361c", "#2c7a2c", "#6b2f6b", "#555555", "#b8860b",
};

static void xml_text(FILE *f, const char *s) {
    for (; *s; s++) {
        if (*s == '<') fputs("&lt;", f);
        else if (*s == '>') fputs("&gt;", f);
        else if (*s == '&') fputs("&amp;", f);
        else if (*s == '"') fputs("&quot;", f);
        else fputc(*s, f);
    }
}

static int find_or_add(char list[][96], int *n, int cap, const char *s) {
    for (int i = 0; i < *n; i++)
        if (!strcmp(list[i], s)) return i;
    if (*n >= cap) return -1;
    snprintf(list[*n], 96, "%s", s);
    return (*n)++;
}

/* Axis maximum and tick step: 1, 2 or 5 times a power of ten, about five ticks. */
static double nice_step(double max) {
    if (!(max > 0)) return 1;
    double raw = max / 5, mag = pow(10, floor(log10(raw))), r = raw / mag;
    return (r <= 1 ? 1 : r <= 2 ? 2 : r <= 5 ? 5 : 10) * mag;
}

static bool in_panel(const struct bench_record *r, int panel) {
    return panel == 0 ? (r->n_prompt > 0 && r->n_gen == 0) : (r->n_gen > 0 && r->n_prompt == 0);
}

static void panel(FILE *f, const struct bench_record *recs, int n, int p, double y0) {
    char groups[MAX_GROUPS][96], series[MAX_SERIES][96];
    int ng = 0, ns = 0;
    double val[MAX_GROUPS][MAX_SERIES], err[MAX_GROUPS][MAX_SERIES], vmax = 0;
    memset(val, 0, sizeof val);
    memset(err, 0, sizeof err);
    for (int i = 0; i < n; i++) {
        const struct bench_record *r = &recs[i];
        if (!in_panel(r, p)) continue;
        char label[96];
        snprintf(label, sizeof label, "%s t%d %s", r->backend, r->n_threads, r->test);
        int g = find_or_add(groups, &ng, MAX_GROUPS, r->model_type), s = find_or_add(series, &ns, MAX_SERIES, label);
        if (g < 0 || s < 0) continue;
        val[g][s] = r->avg_ts;
        err[g][s] = r->stddev_ts;
        if (r->avg_ts + r->stddev_ts > vmax) vmax = r->avg_ts + r->stddev_ts;
    }
    const char *title = p == 0 ? "Prefill (prompt processing)" : "Decode (token generation)";
    double pw = W - LEFT - RIGHT, ph = PANEL_H - TOP - BOTTOM, base = y0 + TOP + ph;
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"15\" font-weight=\"bold\">%s</text>\n", LEFT, y0 + 24, title);
    if (ng == 0) {
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"13\" fill=\"#777\">no %s tests were run</text>\n", LEFT,
                y0 + TOP + ph / 2, p == 0 ? "prefill" : "decode");
        return;
    }
    double step = nice_step(vmax), top = ceil(vmax / step) * step;
    if (top <= 0) top = step;
    for (double v = 0; v <= top + step / 2; v += step) {
        double y = base - v / top * ph;
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", LEFT, y, LEFT + pw, y);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" text-anchor=\"end\">%g</text>\n", LEFT - 6, y + 4, v);
    }
    fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#000\"/>\n", LEFT, y0 + TOP, LEFT, base);
    fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#000\"/>\n", LEFT, base, LEFT + pw, base);
    fprintf(f, "<text transform=\"translate(%.1f,%.1f) rotate(-90)\" font-size=\"12\" text-anchor=\"middle\">tokens / s</text>\n",
            LEFT - 52, y0 + TOP + ph / 2);
    double gw = pw / ng, bw = gw * 0.8 / ns;
    for (int g = 0; g < ng; g++) {
        double gx = LEFT + g * gw + gw * 0.1;
        for (int s = 0; s < ns; s++) {
            if (val[g][s] <= 0) continue;
            double h = val[g][s] / top * ph, x = gx + s * bw;
            fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"/>\n", x, base - h,
                    bw * 0.92, h, palette[s]);
            double e = err[g][s] / top * ph, cx = x + bw * 0.46;
            if (e > 0.5)
                fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#222\"/>\n", cx, base - h - e,
                        cx, base - h + e);
            fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"10\" text-anchor=\"middle\">%.*f</text>\n", cx,
                    base - h - e - 4, val[g][s] < 100 ? 1 : 0, val[g][s]);
        }
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\" text-anchor=\"middle\">", LEFT + g * gw + gw / 2,
                base + 18);
        xml_text(f, groups[g]);
        fprintf(f, "</text>\n");
    }
    for (int s = 0; s < ns; s++) {
        double lx = LEFT + pw + 16, ly = y0 + TOP + s * 20;
        fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"12\" height=\"12\" fill=\"%s\"/>\n", lx, ly, palette[s]);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\">", lx + 18, ly + 10);
        xml_text(f, series[s]);
        fprintf(f, "</text>\n");
    }
}

bool bench_svg_write(const char *path, const struct bench_record *recs, int n) {
    FILE *f = fopen(path, "w");
    if (!f) return false;
    double h = 2 * PANEL_H + 30;
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
               "font-family=\"DejaVu Sans, Arial, sans-serif\">\n", W, h, W, h);
    fprintf(f, "<rect width=\"100%%\" height=\"100%%\" fill=\"#fff\"/>\n");
    fprintf(f, "<text x=\"%.1f\" y=\"20\" font-size=\"13\" fill=\"#555\">rwkv7 bench: mean tokens/s, error bars = sample std. dev.",
            LEFT);
    if (n > 0) {
        fprintf(f, " CPU: ");
        xml_text(f, recs[0].cpu_info);
    }
    fprintf(f, "</text>\n");
    panel(f, recs, n, 0, 20);
    panel(f, recs, n, 1, 20 + PANEL_H);
    fprintf(f, "</svg>\n");
    int err = ferror(f);
    if (fclose(f) != 0 || err) {
        if (!errno) errno = EIO;
        return false;
    }
    return true;
}
