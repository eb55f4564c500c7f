/*
 * release_count_tree: how much a release of a directory will read, for the
 * progress display (see struct release_progress).
 *
 * The scan (create.c) hashes each file as it finds it, so it never knows how
 * many are left; this walk, on a thread of its own beside it, only lists and
 * stats, which is much quicker, so the display has a total (and an ETA) soon
 * after the start. It is an estimate and never an error: what it cannot read
 * it skips, links to directories it does not follow (no loop to guard
 * against), and release_create replaces its totals with the scan's own
 * counts at the end.
 */
#include "release/internal.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

void release_count_tree(const char *root, struct release_progress *p, const atomic_int *stop)
{
    char **stack = xmalloc(sizeof(*stack));
    size_t n = 1, cap = 1;
    int full = 0; /* as many files as a release may hold: the scan refuses more */
    stack[0] = xstrdup(root);
    while (n && !full && !atomic_load(stop)) {
        char *dir = stack[--n];
        DIR *d = opendir(dir);
        struct dirent *de;
        while (d && !full && !atomic_load(stop) && (de = readdir(d))) {
            const char *name = de->d_name;
            if (!strcmp(name, ".") || !strcmp(name, "..") || !strcmp(name, ".git") ||
                !strcmp(name, ".slipway"))
                continue;
            struct stat sb;
            if (fstatat(dirfd(d), name, &sb, AT_SYMLINK_NOFOLLOW) < 0)
                continue;
            int link = S_ISLNK(sb.st_mode);
            if (link && fstatat(dirfd(d), name, &sb, 0) < 0)
                continue;
            if (S_ISREG(sb.st_mode)) {
                full = atomic_fetch_add(&p->files_total, 1) + 1 >= RELEASE_FILES_MAX;
                atomic_fetch_add(&p->bytes_total, (uint64_t)sb.st_size);
            } else if (S_ISDIR(sb.st_mode) && !link) {
                if (n == cap)
                    stack = xrealloc(stack, (cap *= 2) * sizeof(*stack));
                stack[n++] = path_join(dir, name);
            }
        }
        if (d)
            closedir(d);
        free(dir);
    }
    while (n)
        free(stack[--n]);
    free(stack);
}
