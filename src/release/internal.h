/* Private to the release module. */
#ifndef SW_RELEASE_INTERNAL_H
#define SW_RELEASE_INTERNAL_H

#include "release/release.h"

/* Serialises r as a manifest document; caller frees. NULL when a text field is
 * not UTF-8 (JSON text is UTF-8, RFC 8259 section 8.1). */
char *release_manifest_dump(const struct release *r, size_t *len);

/* Well-formed UTF-8 (RFC 3629 section 4): no overlong forms, no surrogates,
 * nothing above U+10FFFF; with printable, no control characters either (C0,
 * DEL, C1), as file names in a release must be. */
int release_utf8_ok(const char *s, int printable);

#endif
