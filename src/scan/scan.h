/*
 * scan — finding committed secrets in a tree or in a release before it may
 * deploy: private key blocks, cloud and chat tokens, JWTs, high-entropy
 * values assigned to password/secret/token keys, and files that hold
 * credentials by their very name (.env, .netrc, id_rsa...). Every finding
 * names its file, line and rule, and carries the value only redacted (its
 * first 4 characters) and as a fingerprint the allow-list can name.
 *
 * Everything scanned is hostile: every matcher is hand-written, runs in time
 * linear in the input (a candidate is only tried where the character before
 * it cannot continue the same token, so no byte is rescanned from many
 * starting points) and reads at most max_file_bytes of a file.
 *
 * Rules, allow-list syntax, redaction and fingerprints: docs/scan.md.
 * Nothing here is shared between calls: every function is thread-safe on
 * distinct reports.
 */
#ifndef SW_SCAN_H
#define SW_SCAN_H

#include "base/base.h"

#include <stddef.h>

/* Codes of this module (beside the SW_E* ones). */
enum {
    SCAN_EIGNORE = -300, /* a bad line in the allow-list: "FILE:LINE: why" */
};

/* Default bound on the bytes read of one file; the rest is not scanned (a note says so). */
#define SCAN_MAX_FILE_BYTES ((size_t)4 << 20)
/* Bytes looked at to decide that a file is binary (and skipped). */
#define SCAN_SNIFF_BYTES 8192
/* Findings kept per file; more are counted in a note, not reported one by one. */
#define SCAN_MAX_FINDINGS_PER_FILE 1000
/* Hex digits of a fingerprint. */
#define SCAN_FINGERPRINT_LEN 16

/* One secret found. Strings are owned by the report. */
struct scan_finding {
    char *path;       /* relative to the scanned root, '/'-separated, raw bytes (escape to print) */
    size_t line;      /* 1-based */
    const char *rule; /* stable rule id ("github-token"); static storage */
    char *redacted;   /* the value's first (at most) 4 printable ASCII characters, then "****" */
    char fingerprint[SCAN_FINGERPRINT_LEN + 1]; /* first 16 hex digits of
                                                 * sha256(rule NUL path NUL value) */
};

struct scan_report {
    struct scan_finding *findings; /* in the order of the walk (paths sorted bytewise), then line */
    size_t n;
    size_t files_scanned;        /* text files whose content was scanned */
    size_t files_skipped_binary; /* skipped by content: a NUL, or too much invalid UTF-8 */
    size_t files_ignored;        /* files and directories (once each, unread) skipped by a
                                  * glob of the allow-list */
    size_t findings_ignored;     /* found but allowed by a fingerprint of the allow-list */
    char **notes;                /* "PATH: why" for what was only partly scanned or skipped */
    size_t nnotes;
    size_t cap, notes_cap; /* private */
};

/* The allow-list (.slipway/scan-ignore): path globs and fingerprints. Opaque. */
struct scan_ignore;

struct scan_opts {
    /* scan_tree: the allow-list file; NULL: <root>/.slipway/scan-ignore when it exists. */
    const char *ignore_file;
    /* scan_buffer (and scan_tree, instead of reading a file): an allow-list
     * already loaded, borrowed; NULL: none. */
    const struct scan_ignore *ignore;
    /* bytes of each file scanned: SCAN_MAX_FILE_BYTES when 0 */
    size_t max_file_bytes;
};

/* A new, empty report (free with scan_report_free), for calls of scan_buffer. */
struct scan_report *scan_report_new(void);
void scan_report_free(struct scan_report *r);

/* Walks the directory root (or scans root alone when it is a regular file,
 * named by root itself) and fills *out (caller frees with scan_report_free,
 * also after an error, when it is not NULL). Symbolic links are never followed
 * (what they point to inside root is scanned under its own name; outside, it
 * was not committed here) and directories named .git are not entered;
 * FIFOs, sockets and devices are not opened. An unreadable file or directory
 * is an error (a gate must not pass what it could not read): SW_EACCES or
 * SW_EIO naming it; a bad allow-list is SCAN_EIGNORE with "FILE:LINE: why". */
int scan_tree(const char *root, const struct scan_opts *opts, struct scan_report **out,
              struct sw_err *err);

/* Scans one file's bytes, named path (relative, '/'-separated: the rules on
 * file names and the allow-list look at it), and appends to rep what it
 * finds: counts it as scanned, binary or ignored, and adds findings and
 * notes. Only the first opts->max_file_bytes of data are read. The allow-list
 * is opts->ignore (opts may be NULL). For a release's files read from the
 * store. Never fails: returns 0. */
int scan_buffer(const char *path, const void *data, size_t len, const struct scan_opts *opts,
                struct scan_report *rep, struct sw_err *err);

/* 1 when the first SCAN_SNIFF_BYTES of data look binary: a NUL byte, or more
 * than one byte in eight not part of well-formed UTF-8. */
int scan_is_binary(const void *data, size_t len);

/* Parses an allow-list (named name in messages) into *out (free with
 * scan_ignore_free). Each line: empty, a comment ('#' first), "fingerprint:"
 * and 16 hex digits, or a path glob ('*' within a segment, '?', "**" as a
 * whole segment, '\' escaping the next character; no '/' in it: the name at
 * any depth; a trailing '/': directories only; a glob naming a directory
 * covers everything under it). A bad line is SCAN_EIGNORE "NAME:LINE: why". */
int scan_ignore_parse(const char *name, const char *data, size_t len, struct scan_ignore **out,
                      struct sw_err *err);
/* Reads and parses the file at path (SW_ENOTFOUND when there is none). */
int scan_ignore_load(const char *path, struct scan_ignore **out, struct sw_err *err);
void scan_ignore_free(struct scan_ignore *ig);
/* 1 when a glob of ig covers path (a file; is_dir: a directory); ig may be NULL. */
int scan_ignore_path(const struct scan_ignore *ig, const char *path, int is_dir);
/* 1 when ig lists the fingerprint fp (16 lowercase hex digits); ig may be NULL. */
int scan_ignore_fingerprint(const struct scan_ignore *ig, const char *fp);

#endif
