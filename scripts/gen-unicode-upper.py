#!/usr/bin/env python3
"""Writes src/pipeline/upper.c: Unicode simple uppercase mappings as runs.

    python3 scripts/gen-unicode-upper.py > src/pipeline/upper.c

GitHub compares strings "OrdinalIgnoreCase": each character is upper-cased on
its own (the simple mapping, one character to one) and the results are
compared by code unit. The mapping comes from Python's unicodedata (its
Unicode version is written into the output); characters whose uppercase is
more than one character (German sharp s, ligatures) keep themselves, as the
simple mapping does. U+0131 (dotless i) is left alone, as GitHub's evaluator
special-cases it, so it never equals 'I'.

The 1,400-odd mappings compress into runs of (first, count, stride, delta):
every stride-th code point from first on maps to itself plus delta.
"""
import unicodedata

pairs = []
for cp in range(0x110000):
    if 0xD800 <= cp < 0xE000 or cp == 0x131:
        continue
    up = chr(cp).upper()
    if len(up) == 1 and up != chr(cp):
        pairs.append((cp, ord(up)))

runs = []
i = 0
while i < len(pairs):
    cp, up = pairs[i]
    delta = up - cp
    best = (1, 1)
    for stride in (1, 2):
        j = i + 1
        while (j < len(pairs) and pairs[j][0] == cp + stride * (j - i)
               and pairs[j][1] - pairs[j][0] == delta):
            j += 1
        if j - i > best[0]:
            best = (j - i, stride)
    runs.append((cp, best[0], best[1], delta))
    i += best[0]

print("/*")
print(" * Unicode %s simple uppercase mappings, as runs: written by" % unicodedata.unidata_version)
print(" * scripts/gen-unicode-upper.py (do not edit; run it again for a newer Unicode).")
print(" * %d code points in %d runs; see the script for what is left out and why." % (len(pairs), len(runs)))
print(" */")
print('#include "pipeline/internal.h"')
print()
print("#include <stddef.h>")
print()
print("static const struct {")
print("    uint32_t first;")
print("    uint16_t count;")
print("    uint8_t stride;")
print("    int32_t delta;")
print("} runs[] = {")
for r in runs:
    print("    {0x%05X, %d, %d, %d}," % r)
print("};")
print()
print("uint32_t expr_upper(uint32_t cp)")
print("{")
print("    size_t lo = 0, hi = sizeof(runs) / sizeof(*runs);")
print("    if (cp < 0x80)")
print("        return cp >= 'a' && cp <= 'z' ? cp - 32 : cp;")
print("    /* the last run starting at or before cp */")
print("    while (hi - lo > 1) {")
print("        size_t mid = lo + (hi - lo) / 2;")
print("        if (runs[mid].first <= cp)")
print("            lo = mid;")
print("        else")
print("            hi = mid;")
print("    }")
print("    if (cp < runs[lo].first)")
print("        return cp;")
print("    uint32_t off = cp - runs[lo].first;")
print("    if (off % runs[lo].stride || off / runs[lo].stride >= runs[lo].count)")
print("        return cp;")
print("    return (uint32_t)((int32_t)cp + runs[lo].delta);")
print("}")
