/* Private to the release module. */
#ifndef SW_RELEASE_INTERNAL_H
#define SW_RELEASE_INTERNAL_H

#include "release/release.h"

/* Serialises r as a manifest document; caller frees. */
char *release_manifest_dump(const struct release *r, size_t *len);

#endif
