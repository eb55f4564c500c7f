/*
 * The text a step sends back, parsed as GitHub's runner parses it: workflow
 * command lines (ActionCommand.TryParseV2 and the older TryParse), the
 * NAME=VALUE / NAME<<DELIMITER files behind GITHUB_OUTPUT, GITHUB_ENV and
 * GITHUB_STATE (EnvFileKeyValuePairs), and the secret masker.
 *
 * The one idea: these parsers reproduce .NET string operations exactly,
 * quirks included (String.Split with a count and RemoveEmptyEntries drops
 * the '='s a property value starts with; the unescaping is a fixed sequence of
 * Replace calls; a file's empty-name check is a no-op upstream), because a
 * workflow that works on GitHub must read the same here. Every function is
 * pure and bounded: nothing it returns is longer than what it was given.
 */
#include "pipeline/internal.h"
#include "pipeline/step_internal.h"

#include <string.h>

/* ---- small lists --------------------------------------------------------------------- */

/* A copy of s[0..len) and a NUL; unlike xstrndup it does not stop at a NUL. */
static char *copy(const char *s, size_t len)
{
    char *c = xmalloc(len + 1);
    memcpy(c, s, len);
    c[len] = '\0';
    return c;
}

void pipeline_step_vars_set(struct pipeline_step_vars *l, const char *name, size_t name_len,
                            const char *value, size_t len)
{
    /* A NUL would cut the name short, and make it another name. */
    if (memchr(name, '\0', name_len))
        return;
    for (size_t i = 0; i < l->n; i++) {
        if (strlen(l->v[i].name) == name_len && !memcmp(l->v[i].name, name, name_len)) {
            free(l->v[i].value);
            l->v[i].value = copy(value, len);
            l->v[i].value_len = len;
            return;
        }
    }
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 8;
        l->v = xrealloc(l->v, l->cap * sizeof(*l->v));
    }
    l->v[l->n++] = (struct pipeline_step_var){xstrndup(name, name_len), copy(value, len), len};
}

const struct pipeline_step_var *pipeline_step_vars_get(const struct pipeline_step_vars *l,
                                                       const char *name)
{
    for (size_t i = 0; l && i < l->n; i++)
        if (!strcmp(l->v[i].name, name))
            return &l->v[i];
    return NULL;
}

void pipeline_step_vars_free(struct pipeline_step_vars *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].name);
        free(l->v[i].value);
    }
    free(l->v);
    memset(l, 0, sizeof(*l));
}

void pipeline_step_list_add(struct pipeline_step_list *l, const char *s, size_t len)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 8;
        l->v = xrealloc(l->v, l->cap * sizeof(*l->v));
    }
    l->v[l->n++] = copy(s, len);
}

void pipeline_step_list_free(struct pipeline_step_list *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof(*l));
}

void pipeline_step_path_prepend(struct pipeline_step_list *job, const char *dir)
{
    /* AddPathFileCommand: PrependPath.RemoveAll(equal), then Add. dir may
     * be one of the list's own entries. */
    char *d = xstrdup(dir);
    size_t m = 0;
    for (size_t i = 0; i < job->n; i++) {
        if (!strcmp(job->v[i], d))
            free(job->v[i]);
        else
            job->v[m++] = job->v[i];
    }
    job->n = m;
    pipeline_step_list_add(job, d, strlen(d));
    free(d);
}

/* ---- .NET string helpers ---------------------------------------------------------------- */

const char *step_trim(const char *s, size_t *len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = *len, k, end = 0, i = 0;

    while (i < n && (k = expr_space_len(p + i, n - i)) > 0)
        i += k;
    p += i, n -= i;
    /* The end: the byte after the last character that is not white space. */
    for (size_t j = 0; j < n;) {
        if ((k = expr_space_len(p + j, n - j)) > 0) {
            j += k;
        } else {
            uint32_t cp;
            j += expr_utf8_next(p + j, n - j, &cp);
            end = j;
        }
    }
    *len = end;
    return (const char *)p;
}

/* One String.Replace(token, c) pass over s[0..*len), in place: the result is
 * never longer, and .NET replaces left to right without overlaps. */
static void replace3(char *s, size_t *len, const char *tok, char c)
{
    size_t r = 0, w = 0, n = *len;
    while (r < n) {
        if (r + 3 <= n && s[r] == tok[0] && s[r + 1] == tok[1] && s[r + 2] == tok[2]) {
            s[w++] = c;
            r += 3;
        } else {
            s[w++] = s[r++];
        }
    }
    s[w] = '\0';
    *len = w;
}

enum { ESC_DATA, ESC_PROPERTY, ESC_LEGACY };

/* ActionCommand's UnescapeData / UnescapeProperty / Unescape: the mappings in
 * their declared order. */
static char *unescape(const char *s, size_t n, int kind, size_t *out_len)
{
    static const char *const data[] = {"%0D\r", "%0A\n", "%25%", NULL};
    static const char *const prop[] = {"%0D\r", "%0A\n", "%3A:", "%2C,", "%25%", NULL};
    static const char *const legacy[] = {"%3B;", "%0D\r", "%0A\n", "%5D]", "%25%", NULL};
    const char *const *map = kind == ESC_DATA ? data : kind == ESC_PROPERTY ? prop : legacy;
    char *out = xmalloc(n + 1);
    memcpy(out, s, n);
    out[n] = '\0';
    *out_len = n;
    for (; *map; map++)
        replace3(out, out_len, *map, (*map)[3]);
    return out;
}

/* ---- workflow commands --------------------------------------------------------------------- */

const char *const step_commands[] = {
    "stop-commands", "set-env",        "set-output", "save-state", "add-mask", "add-path",
    "add-matcher",   "remove-matcher", "debug",      "warning",    "error",    "notice",
    "group",         "endgroup",       "echo",       NULL,
};

static const char *command_name(const char *name, size_t len)
{
    for (const char *const *c = step_commands; *c; c++)
        if (expr_eq_fold(*c, strlen(*c), name, len))
            return *c;
    return NULL;
}

int step_is_command(const char *name, size_t len)
{
    return command_name(name, len) != NULL;
}

static const char *find(const char *s, size_t n, const char *needle, size_t from)
{
    size_t k = strlen(needle);
    if (from > n)
        return NULL;
    return memmem(s + from, n - from, needle, k);
}

/* Properties[key] = value with the dictionary's OrdinalIgnoreCase: an equal
 * key keeps its first spelling and takes the new value. */
static void prop_set(struct pipeline_step_vars *props, const char *k, size_t klen, const char *v,
                     size_t vlen)
{
    for (size_t i = 0; i < props->n; i++) {
        if (expr_eq_fold(props->v[i].name, strlen(props->v[i].name), k, klen)) {
            char *name = xstrdup(props->v[i].name);
            pipeline_step_vars_set(props, name, strlen(name), v, vlen);
            free(name);
            return;
        }
    }
    pipeline_step_vars_set(props, k, klen, v, vlen);
}

/* propertyStr.Split('=', 2, RemoveEmptyEntries) as .NET does it: empty
 * pieces before the first kept one are skipped, and once one is kept the
 * empty pieces after it are skipped too, so "a==b" is ("a", "b") and "=a=b" is
 * ("a", "b"). 1 when it yields two pieces. */
static int split_pair(const char *s, size_t n, const char **k, size_t *klen, const char **v,
                      size_t *vlen)
{
    size_t cur = 0, kept = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '=')
            continue;
        if (i > cur) {
            *k = s + cur, *klen = i - cur;
            kept = 1;
        }
        cur = i + 1;
        if (kept) {
            while (cur < n && s[cur] == '=')
                cur++;
            break;
        }
    }
    if (!kept || cur >= n)
        return 0;
    *v = s + cur, *vlen = n - cur;
    return 1;
}

static void parse_props(struct pipeline_step_vars *props, const char *s, size_t n, char sep,
                        int kind)
{
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && s[i] != sep)
            continue;
        const char *k, *v;
        size_t klen, vlen;
        if (i > start && split_pair(s + start, i - start, &k, &klen, &v, &vlen)) {
            size_t ulen;
            char *u = unescape(v, vlen, kind, &ulen);
            prop_set(props, k, klen, u, ulen);
            free(u);
        }
        start = i + 1;
    }
}

/* The name in cmd[0..n) (up to its first ' '), if registered. */
static int take_name(const char *info, size_t n, const char *stop_token,
                     struct pipeline_step_command *c, size_t *space)
{
    const char *sp = memchr(info, ' ', n);
    size_t len = sp ? (size_t)(sp - info) : n;
    *space = sp ? len : SIZE_MAX;
    if (len == 0)
        return 0;
    /* While commands are stopped the token is registered too, and it may be
     * a command's own name (with ACTIONS_ALLOW_UNSECURE_STOPCOMMAND_TOKENS). */
    c->is_stop_token =
        stop_token && *stop_token && expr_eq_fold(stop_token, strlen(stop_token), info, len);
    c->name = command_name(info, len);
    if (!c->name && c->is_stop_token)
        c->name = stop_token;
    return c->name != NULL;
}

int pipeline_step_command_parse(const char *line, size_t len, const char *stop_token,
                                struct pipeline_step_command *c)
{
    const char *at, *end;
    size_t n, k, space, plen;

    memset(c, 0, sizeof(*c));
    /* TryParseV2: "::" after leading white space, then the first "::". */
    at = line, n = len;
    while ((k = expr_space_len((const unsigned char *)at, n)) > 0)
        at += k, n -= k;
    if (n >= 2 && at[0] == ':' && at[1] == ':' && (end = find(at, n, "::", 2)) != NULL) {
        size_t info_len = (size_t)(end - at) - 2;
        if (take_name(at + 2, info_len, stop_token, c, &space)) {
            if (space != SIZE_MAX && space > 0) {
                plen = info_len - space - 1;
                const char *p = step_trim(at + 2 + space + 1, &plen);
                parse_props(&c->props, p, plen, ',', ESC_PROPERTY);
            }
            const char *d = end + 2;
            c->data = unescape(d, (size_t)(at + n - d), ESC_DATA, &c->data_len);
            return 1;
        }
        memset(c, 0, sizeof(*c));
    }
    /* TryParse: "##[" anywhere, up to the next ']'. */
    const char *pre = find(line, len, "##[", 0);
    if (!pre)
        return 0;
    const char *rb = memchr(pre + 3, ']', (size_t)(line + len - pre - 3));
    if (!rb)
        return 0;
    size_t info_len = (size_t)(rb - pre - 3);
    if (!take_name(pre + 3, info_len, stop_token, c, &space)) {
        memset(c, 0, sizeof(*c));
        return 0;
    }
    if (space != SIZE_MAX && space > 0)
        parse_props(&c->props, pre + 3 + space + 1, info_len - space - 1, ';', ESC_LEGACY);
    c->data = unescape(rb + 1, (size_t)(line + len - rb - 1), ESC_LEGACY, &c->data_len);
    return 1;
}

void pipeline_step_command_free(struct pipeline_step_command *c)
{
    if (!c)
        return;
    pipeline_step_vars_free(&c->props);
    free(c->data);
    memset(c, 0, sizeof(*c));
}

const char *pipeline_step_command_prop(const struct pipeline_step_command *c, const char *name)
{
    for (size_t i = 0; i < c->props.n; i++)
        if (expr_eq_fold(c->props.v[i].name, strlen(c->props.v[i].name), name, strlen(name)))
            return c->props.v[i].value;
    return NULL;
}

/* ---- GITHUB_OUTPUT, GITHUB_ENV, GITHUB_STATE ------------------------------------------------ */

/* ReadLine as the runner has it off Windows: up to the next '\n'; *nl says
 * whether one ended it. NULL at the end of the text. */
static const char *read_line(const char *t, size_t len, size_t *at, size_t *n, int *nl)
{
    if (*at >= len)
        return NULL;
    const char *s = t + *at;
    const char *e = memchr(s, '\n', len - *at);
    *nl = e != NULL;
    *n = e ? (size_t)(e - s) : len - *at;
    *at += *n + (e != NULL);
    return s;
}

static int bad_line(struct sw_err *err, const char *what, const char *line, size_t n,
                    const char *tail)
{
    int show = n > 512 ? 512 : (int)n;
    return sw_err_set(err, SW_EINVAL, "%s '%.*s%s'%s", what, show, line, n > 512 ? "…" : "", tail);
}

int pipeline_step_file_parse(const char *text, size_t len, pipeline_step_pair_fn *fn, void *ctx,
                             struct sw_err *err)
{
    size_t at = 0, n;
    int nl;
    const char *line;

    /* File.ReadAllText drops a UTF-8 byte order mark. */
    if (len >= 3 && !memcmp(text, "\xef\xbb\xbf", 3))
        at = 3;
    while ((line = read_line(text, len, &at, &n, &nl)) != NULL) {
        if (n == 0)
            continue;
        const char *eq = memchr(line, '=', n);
        const char *hd = find(line, n, "<<", 0);
        if (eq && (!hd || eq < hd)) {
            /* Upstream's "Name must not be empty" check tests the line, not
             * the name, and never fires; an empty name is refused here, since
             * no environment or output can be named "". */
            if (eq == line)
                return bad_line(err, "Invalid format", line, n, ". Name must not be empty");
            fn(ctx, line, (size_t)(eq - line), eq + 1, (size_t)(line + n - eq - 1), NULL, 0);
        } else if (hd) {
            const char *delim = hd + 2;
            size_t dlen = (size_t)(line + n - delim);
            if (hd == line || dlen == 0)
                return bad_line(err, "Invalid format", line, n,
                                ". Name must not be empty and delimiter must not be empty");
            size_t start = at, end = at, tn;
            int tnl;
            const char *tl;
            for (;;) {
                tl = read_line(text, len, &at, &tn, &tnl);
                if (tl && tn == dlen && !memcmp(tl, delim, dlen))
                    break;
                if (!tl) {
                    int show = dlen > 512 ? 512 : (int)dlen;
                    return sw_err_set(err, SW_EINVAL,
                                      "Invalid value. Matching delimiter not found '%.*s%s'", show,
                                      delim, dlen > 512 ? "…" : "");
                }
                if (!tnl)
                    return sw_err_set(err, SW_EINVAL,
                                      "Invalid value. EOF marker missing new line.");
                end = at - 1;
            }
            fn(ctx, line, (size_t)(hd - line), text + start, end > start ? end - start : 0, delim,
               dlen);
        } else {
            return bad_line(err, "Invalid format", line, n, "");
        }
    }
    return 0;
}

/* ---- masking
 * ------------------------------------------------------------------------------------- */

/* Zeroes cover for a text of len bytes, once per call. */
static unsigned char *cover_init(struct buf *cover, size_t len, unsigned char **cv)
{
    if (!*cv) {
        buf_reset(cover);
        buf_grow(cover, len + 1);
        memset(cover->data, 0, len);
        *cv = (unsigned char *)cover->data;
    }
    return *cv;
}

/* The masking itself (see step_masker_write); cover is scratch space. */
static size_t mask_core(char *const *values, const size_t *lens, size_t nvalues, const char *text,
                        size_t len, size_t pre, size_t cut, struct buf *cover, struct buf *out)
{
    size_t reach = 0;
    unsigned char *cv = NULL;

    if (pre > len)
        pre = len;
    for (size_t i = 0; i < nvalues; i++) {
        size_t vl = lens ? lens[i] : strlen(values[i]), marked = 0, pos = 0;
        if (vl == 0 || vl > len)
            continue;
        while (pos + vl <= len) {
            const char *f = memmem(text + pos, len - pos, values[i], vl);
            if (!f)
                break;
            size_t s = (size_t)(f - text), e = s + vl;
            cover_init(cover, len, &cv);
            /* Each value's occurrences come in order: mark each byte once. */
            for (size_t j = s > marked ? s : marked; j < e; j++)
                cv[j] = 1;
            marked = e;
            if (s < cut && e > cut && e - cut > reach)
                reach = e - cut;
            pos = s + 1; /* occurrences may overlap, as GitHub finds them */
        }
    }
    if (!cv && pre == 0) {
        buf_add(out, text, cut);
        return 0;
    }
    cover_init(cover, len, &cv);
    memset(cv, 1, pre);
    if (pre > cut && pre - cut > reach)
        reach = pre - cut;
    /* A run of covered bytes, however many occurrences overlap or touch in
     * it, is one "***": GitHub merges a position starting at or before the
     * end of the one before. */
    for (size_t i = 0; i < cut;) {
        size_t j = i;
        if (cv[i]) {
            while (j < cut && cv[j])
                j++;
            buf_add(out, "***", 3);
        } else {
            while (j < cut && !cv[j])
                j++;
            buf_add(out, text + i, j - i);
        }
        i = j;
    }
    return reach;
}

void pipeline_step_mask(const struct pipeline_step_list *masks, const char *text, size_t len,
                        struct buf *out)
{
    struct buf cover = BUF_INIT;
    mask_core(masks ? masks->v : NULL, NULL, masks ? masks->n : 0, text, len, 0, len, &cover, out);
    buf_free(&cover);
}

void step_masker_add(struct step_masker *m, const char *v, size_t len)
{
    if (len == 0 || memchr(v, '\0', len))
        return;
    for (size_t i = 0; i < m->values.n; i++)
        if (m->lens[i] == len && !memcmp(m->values.v[i], v, len))
            return;
    pipeline_step_list_add(&m->values, v, len);
    m->lens = xrealloc(m->lens, m->values.cap * sizeof(*m->lens));
    m->lens[m->values.n - 1] = len;
    m->bytes += len;
    if (!memchr(v, '\n', len) && !memchr(v, '\r', len) && len > m->longest_line)
        m->longest_line = len;
}

void step_masker_add_secret(struct step_masker *m, const char *v, size_t len)
{
    /* JobRunner: the trimmed value whole, then value.Split('\r', '\n',
     * RemoveEmptyEntries), each trimmed. */
    v = step_trim(v, &len);
    step_masker_add(m, v, len);
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && v[i] != '\r' && v[i] != '\n')
            continue;
        size_t n = i - start;
        const char *p = step_trim(v + start, &n);
        step_masker_add(m, p, n);
        start = i + 1;
    }
}

size_t step_masker_write(struct step_masker *m, const char *text, size_t len, size_t pre,
                         size_t cut, struct buf *out)
{
    return mask_core(m->values.v, m->lens, m->values.n, text, len, pre, cut, &m->cover, out);
}

void step_masker_free(struct step_masker *m)
{
    pipeline_step_list_free(&m->values);
    free(m->lens);
    buf_free(&m->cover);
    memset(m, 0, sizeof(*m));
}
