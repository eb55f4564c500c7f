/*
 * libFuzzer target for what a step sends back (src/pipeline/stepcmd.c): a line of its output
 * read as a workflow command, the text of a GITHUB_OUTPUT / GITHUB_ENV file, and the masker.
 * The first byte picks which; the rest is the input. Beyond the sanitizers (the input is not
 * NUL-terminated), it checks what the runner relies on:
 *  - commands: parsing is deterministic; decoding never grows (data and every property value
 *    fit in the line); a command's name is one of GitHub's (or the stop token), its
 *    properties have names and values; and any text, escaped as GitHub's toolkit escapes it,
 *    comes back exactly as data and as a property value;
 *  - files: parsing is deterministic; every name, value and delimiter lies inside the text
 *    and they never overlap; no value holds a line equal to its delimiter (a value never
 *    spans a delimiter); names hold neither '=' nor "<<"; and the pairs, written back with
 *    fresh delimiters, read back the same;
 *  - masking: deterministic, at most three bytes out for one in, and (masks without '*')
 *    no mask left in the output.
 */
#include "fuzz.h"
#include "pipeline/pipeline.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- commands ----------------------------------------------------------------------------- */

static int same_command(const struct pipeline_step_command *a,
                        const struct pipeline_step_command *b)
{
    if (strcmp(a->name, b->name) || a->data_len != b->data_len ||
        memcmp(a->data, b->data, a->data_len) || a->props.n != b->props.n)
        return 0;
    for (size_t i = 0; i < a->props.n; i++)
        if (strcmp(a->props.v[i].name, b->props.v[i].name) ||
            a->props.v[i].value_len != b->props.v[i].value_len ||
            memcmp(a->props.v[i].value, b->props.v[i].value, a->props.v[i].value_len))
            return 0;
    return 1;
}

static void check_command(const char *line, size_t len, const char *stop)
{
    struct pipeline_step_command c, again;
    int rc = pipeline_step_command_parse(line, len, stop, &c);
    CHECK(rc == 0 || rc == 1);
    CHECK(pipeline_step_command_parse(line, len, stop, &again) == rc);
    if (!rc)
        return;
    CHECK(same_command(&c, &again));
    CHECK(c.name != NULL && c.data != NULL && c.data[c.data_len] == '\0');
    CHECK(c.data_len <= len);
    CHECK(memmem(line, len, "::", 2) || memmem(line, len, "##[", 3));
    CHECK(!c.is_stop_token || stop != NULL);
    size_t props = 0;
    for (size_t i = 0; i < c.props.n; i++) {
        CHECK(c.props.v[i].name[0] != '\0');
        CHECK(c.props.v[i].value_len > 0 && c.props.v[i].value_len <= len);
        props += strlen(c.props.v[i].name) + c.props.v[i].value_len;
    }
    CHECK(props + c.data_len <= len);
    pipeline_step_command_free(&c);
    pipeline_step_command_free(&again);
}

/* The toolkit's escapeData / escapeProperty. */
static void escape(struct buf *b, const char *s, size_t n, int property)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%')
            buf_adds(b, "%25");
        else if (s[i] == '\r')
            buf_adds(b, "%0D");
        else if (s[i] == '\n')
            buf_adds(b, "%0A");
        else if (property && s[i] == ':')
            buf_adds(b, "%3A");
        else if (property && s[i] == ',')
            buf_adds(b, "%2C");
        else
            buf_add(b, s + i, 1);
    }
}

/* Any data comes back; a property value too, unless .NET's Split and Trim
 * would take from its ends (a leading '=', a trailing blank). */
static void check_round_trip(const char *s, size_t n)
{
    struct buf line = BUF_INIT;
    struct pipeline_step_command c;
    size_t half = n / 2;
    const char *p = s, *d = s + half;
    size_t dn = n - half;
    int prop_ok =
        half > 0 && p[0] != '=' &&
        ((p[half - 1] >= '0' && p[half - 1] <= '9') || (p[half - 1] >= 'a' && p[half - 1] <= 'z'));

    buf_adds(&line, "::warning");
    if (prop_ok) {
        buf_adds(&line, " title=");
        escape(&line, p, half, 1);
    }
    buf_adds(&line, "::");
    escape(&line, d, dn, 0);
    CHECK(pipeline_step_command_parse(line.data, line.len, NULL, &c) == 1);
    CHECK(!strcmp(c.name, "warning"));
    CHECK(c.data_len == dn && !memcmp(c.data, d, dn));
    if (prop_ok) {
        CHECK(c.props.n == 1 && !strcmp(c.props.v[0].name, "title"));
        CHECK(c.props.v[0].value_len == half && !memcmp(c.props.v[0].value, p, half));
    }
    pipeline_step_command_free(&c);
    buf_free(&line);
}

/* ---- files ------------------------------------------------------------------------------------
 */

struct pair {
    size_t name_at, name_len, value_at, value_len;
    int heredoc;
};

struct pairs {
    const char *text;
    size_t len, n;
    struct pair p[1024];
    size_t bytes;
};

static void on_pair(void *ctx, const char *name, size_t nlen, const char *value, size_t vlen,
                    const char *delim, size_t dlen)
{
    struct pairs *ps = ctx;
    const char *end = ps->text + ps->len;
    CHECK(name >= ps->text && name + nlen <= end && nlen > 0);
    CHECK(vlen == 0 || (value >= ps->text && value + vlen <= end));
    CHECK(!memchr(name, '=', nlen) && !memmem(name, nlen, "<<", 2) && !memchr(name, '\n', nlen));
    ps->bytes += nlen + vlen + dlen;
    CHECK(ps->bytes <= ps->len);
    if (delim) {
        CHECK(dlen > 0 && delim >= ps->text && delim + dlen <= end);
        /* No line of the value is the delimiter. */
        for (size_t a = 0, b = 0; b <= vlen; b++) {
            if (b < vlen && value[b] != '\n')
                continue;
            CHECK(!(b - a == dlen && !memcmp(value + a, delim, dlen)));
            a = b + 1;
        }
    } else {
        CHECK(!memchr(value, '\n', vlen));
    }
    if (ps->n < sizeof(ps->p) / sizeof(ps->p[0]))
        ps->p[ps->n++] = (struct pair){(size_t)(name - ps->text), nlen,
                                       vlen ? (size_t)(value - ps->text) : 0, vlen, delim != NULL};
}

/* A delimiter that is no line of v. */
static void delimiter(const char *v, size_t n, char *out, size_t size)
{
    for (unsigned k = 0;; k++) {
        snprintf(out, size, "EOF_%u", k);
        size_t dl = strlen(out);
        int clash = 0;
        for (size_t a = 0, b = 0; b <= n && !clash; b++) {
            if (b < n && v[b] != '\n')
                continue;
            clash = b - a == dl && !memcmp(v + a, out, dl);
            a = b + 1;
        }
        if (!clash)
            return;
    }
}

static void check_file(const char *text, size_t len)
{
    struct pairs *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b)), *c = calloc(1, sizeof(*c));
    struct sw_err ea = {0}, eb = {0}, ec = {0};
    CHECK(a && b && c);
    a->text = b->text = text;
    a->len = b->len = len;
    int rc = pipeline_step_file_parse(text, len, on_pair, a, &ea);
    CHECK(rc == 0 || rc == SW_EINVAL);
    CHECK(rc == 0 || ea.msg[0] != '\0');
    CHECK(pipeline_step_file_parse(text, len, on_pair, b, &eb) == rc);
    CHECK(!strcmp(ea.msg, eb.msg) && a->n == b->n);
    CHECK(!memcmp(a->p, b->p, a->n * sizeof(a->p[0])));

    /* Written back (a first empty line, so no name is taken for a byte
     * order mark), the pairs read back the same. */
    if (a->n < sizeof(a->p) / sizeof(a->p[0])) {
        struct buf out = BUF_INIT;
        char delim[32];
        buf_add(&out, "\n", 1);
        for (size_t i = 0; i < a->n; i++) {
            const struct pair *p = &a->p[i];
            const char *v = text + p->value_at;
            buf_add(&out, text + p->name_at, p->name_len);
            if (!memchr(v, '\n', p->value_len)) {
                buf_add(&out, "=", 1);
                buf_add(&out, v, p->value_len);
                buf_add(&out, "\n", 1);
            } else {
                delimiter(v, p->value_len, delim, sizeof(delim));
                buf_addf(&out, "<<%s\n", delim);
                buf_add(&out, v, p->value_len);
                buf_addf(&out, "\n%s\n", delim);
            }
        }
        c->text = out.data;
        c->len = out.len;
        CHECK(pipeline_step_file_parse(out.data, out.len, on_pair, c, &ec) == 0);
        CHECK(c->n == a->n);
        for (size_t i = 0; i < a->n; i++) {
            CHECK(c->p[i].name_len == a->p[i].name_len);
            CHECK(!memcmp(out.data + c->p[i].name_at, text + a->p[i].name_at, a->p[i].name_len));
            CHECK(c->p[i].value_len == a->p[i].value_len);
            CHECK(!a->p[i].value_len ||
                  !memcmp(out.data + c->p[i].value_at, text + a->p[i].value_at, a->p[i].value_len));
        }
        buf_free(&out);
    }
    free(a);
    free(b);
    free(c);
}

/* ---- masking --------------------------------------------------------------------------------- */

static void check_mask(const char *in, size_t n)
{
    struct pipeline_step_list masks = PIPELINE_STEP_LIST_INIT;
    struct buf out = BUF_INIT, again = BUF_INIT;
    size_t start = 0, parts = 0;
    int stars = 0;
    /* NUL-separated masks, then the text. */
    for (size_t i = 0; i < n && parts < 8; i++) {
        if (in[i] != '\0')
            continue;
        pipeline_step_list_add(&masks, in + start, i - start);
        stars |= memchr(in + start, '*', i - start) != NULL;
        start = i + 1;
        parts++;
    }
    const char *text = in + start;
    size_t tn = n - start;
    pipeline_step_mask(&masks, text, tn, &out);
    pipeline_step_mask(&masks, text, tn, &again);
    CHECK(out.len == again.len && (out.len == 0 || !memcmp(out.data, again.data, out.len)));
    CHECK(out.len <= 3 * tn);
    for (size_t i = 0; i < masks.n && !stars; i++) {
        size_t ml = strlen(masks.v[i]);
        CHECK(ml == 0 || out.len == 0 || !memmem(out.data, out.len, masks.v[i], ml));
    }
    buf_free(&out);
    buf_free(&again);
    pipeline_step_list_free(&masks);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    char *in = malloc(size - 1 ? size - 1 : 1);
    CHECK(in != NULL);
    memcpy(in, data + 1, size - 1);
    size_t n = size - 1;
    switch (data[0] % 3) {
    case 0:
        check_command(in, n, NULL);
        check_command(in, n, "tok");
        check_command(in, n, "warning");
        check_round_trip(in, n);
        break;
    case 1:
        check_file(in, n);
        break;
    default:
        check_mask(in, n);
        break;
    }
    free(in);
    return 0;
}
