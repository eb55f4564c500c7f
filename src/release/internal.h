/* Private to the release module. */
#ifndef SW_RELEASE_INTERNAL_H
#define SW_RELEASE_INTERNAL_H

#include "release/release.h"

/* Serialises r as a manifest document; caller frees. NULL when a text field is
 * not UTF-8 (JSON text is UTF-8, RFC 8259 section 8.1). */
char *release_manifest_dump(const struct release *r, size_t *len);

#endif
