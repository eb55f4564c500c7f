/* Private to src/scan/: what the rules (rules.c) hand to the walk and the report (scan.c). */
#ifndef SW_SCAN_INTERNAL_H
#define SW_SCAN_INTERNAL_H

#include "scan/scan.h"

#include <stddef.h>

/* One match: a rule, where, and the value it matched, pointing into the scanned bytes. */
struct scan_hit {
    const char *rule;
    size_t line, col; /* 1-based line; col: byte offset of the value in the line, for ordering */
    const char *val;
    size_t vlen;
};

struct scan_hits {
    struct scan_hit *v;
    size_t n, cap;
};

/* Runs every content rule over text (len bytes, already bounded) and appends
 * the matches to h, sorted by line then column. Linear in len. */
void scan_rules_content(const char *text, size_t len, struct scan_hits *h);
/* The rules on file names: when path's base name is one of them and text
 * holds a value, appends one match (the first value) to h. */
void scan_rules_name(const char *path, const char *text, size_t len, struct scan_hits *h);
/* Reads at most 1 MiB (more is an error) from fd and parses it as the
 * allow-list named name. */
int scan_ignore_read_fd(int fd, const char *name, struct scan_ignore **out, struct sw_err *err);
/* Shannon entropy of s, bits per byte. */
double scan_entropy(const char *s, size_t n);

#endif
