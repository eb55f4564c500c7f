/*
 * The strict XML reader for S3's answers (s3xml.h says what it accepts).
 *
 * The one idea: a single pass over the bytes with an explicit stack of open
 * elements (at most S3XML_DEPTH_MAX frames), never recursion, so a hostile
 * body costs time and memory in proportion to its length and no more. First
 * the whole input is checked to be UTF-8 without NUL or control bytes (XML 1.0
 * section 2.2, Char), so the grammar below may treat every byte >= 0x80 as
 * part of a name or text. Each open element keeps its text in a growable
 * buffer and its children in an array that doubles, so appending is amortized
 * constant. Positions are bytes while parsing; only an error turns its offset
 * into a line and a column, by one scan from the start.
 *
 * Grammar followed (XML 1.0, fifth edition): document (2.1) without doctypedecl
 * (2.8) or PI (2.6); element, STag, ETag, EmptyElemTag, Attribute (3.1);
 * CharData without "]]>" (2.4); Comment without "--" (2.5); CDSect (2.7);
 * Reference to the five predefined entities (4.6) and CharRef (4.1); XMLDecl
 * with VersionInfo, EncodingDecl (UTF-8 only) and SDDecl (2.8, 4.3.3).
 */
#include "store/s3xml.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The text of every element without any: one shared, never freed. */
static char empty_text[1];

/* How much of a name from the document an error message shows. */
#define SHOW_MAX 64

struct frame {
    struct s3xml_node *node;
    struct buf text;
    size_t cap; /* of node->kids */
};

struct parser {
    const char *s;
    size_t len, pos;
    size_t nodes;
    struct sw_err *err;
};

/* ---- errors ---------------------------------------------------------------- */

/* "line L, column C: " for byte offset at: lines end at LF, CR LF or a lone CR
 * (section 2.11); the column counts characters (UTF-8 lead bytes). Called only
 * once a parse has failed, so its scan from the start keeps parsing linear. */
static int fail(struct parser *p, size_t at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(struct parser *p, size_t at, const char *fmt, ...)
{
    size_t line = 1, col = 1;
    struct buf b = BUF_INIT;
    va_list ap;

    if (at > p->len)
        at = p->len;
    for (size_t i = 0; i < at; i++) {
        unsigned char c = (unsigned char)p->s[i];
        if (c == '\n' || (c == '\r' && (i + 1 >= p->len || p->s[i + 1] != '\n'))) {
            line++;
            col = 1;
        } else if ((c & 0xc0) != 0x80) {
            col++;
        }
    }
    va_start(ap, fmt);
    buf_vaddf(&b, fmt, ap);
    va_end(ap);
    sw_err_set(p->err, SW_EINVAL, "line %zu, column %zu: %s", line, col, b.data ? b.data : "");
    buf_free(&b);
    return SW_EINVAL;
}

/* Appends the first SHOW_MAX bytes of s[0..n), escaped for a terminal. */
static void add_shown(struct buf *b, const char *s, size_t n)
{
    char *t = xstrndup(s, n < SHOW_MAX ? n : SHOW_MAX);
    buf_add_escaped(b, t);
    if (n > SHOW_MAX)
        buf_adds(b, "...");
    free(t);
}

/* fail() with "<prefix>NAME<suffix>" built from a name in the document. */
static int fail_name(struct parser *p, size_t at, const char *before, const char *name, size_t n,
                     const char *after)
{
    struct buf b = BUF_INIT;
    buf_adds(&b, before);
    add_shown(&b, name, n);
    buf_adds(&b, after);
    int rc = fail(p, at, "%s", b.data);
    buf_free(&b);
    return rc;
}

/* ---- characters ------------------------------------------------------------- */

/* Section 2.2: Char is tab, LF, CR and everything from U+0020 but surrogates,
 * U+FFFE and U+FFFF; the input must be UTF-8 (RFC 3629: no overlong forms, no
 * surrogates, nothing above U+10FFFF). A NUL is named on its own: it is the
 * classic way to cut a string short behind a C reader's back. */
static int check_chars(struct parser *p)
{
    const unsigned char *s = (const unsigned char *)p->s;
    size_t i = 0, n = p->len;

    while (i < n) {
        unsigned c = s[i];
        if (c < 0x80) {
            if (c == 0)
                return fail(p, i, "expected a character, found a NUL byte");
            if (c < 0x20 && c != '\t' && c != '\n' && c != '\r')
                return fail(p, i, "expected a character, found the control byte 0x%02x", c);
            i++;
            continue;
        }
        size_t k;
        uint32_t cp, min;
        if (c >= 0xc2 && c <= 0xdf)
            k = 1, cp = c & 0x1f, min = 0x80;
        else if (c >= 0xe0 && c <= 0xef)
            k = 2, cp = c & 0x0f, min = 0x800;
        else if (c >= 0xf0 && c <= 0xf4)
            k = 3, cp = c & 0x07, min = 0x10000;
        else
            return fail(p, i, "expected UTF-8, found the byte 0x%02x", c);
        if (n - i <= k)
            return fail(p, i, "expected UTF-8, found a sequence cut short by the end");
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xc0) != 0x80)
                return fail(p, i, "expected UTF-8, found a malformed sequence");
            cp = (cp << 6) | (s[i + j] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return fail(p, i, "expected UTF-8, found an overlong or out-of-range sequence");
        if (cp == 0xfffe || cp == 0xffff)
            return fail(p, i, "expected a character, found U+%04X (not a character)", cp);
        i += k + 1;
    }
    return 0;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Section 2.3, NameStartChar and NameChar, with every non-ASCII character
 * taken as a letter: the input is known to be UTF-8, and S3's names are
 * ASCII, so the finer Unicode classes would only add code. */
static int name_start(char ch)
{
    unsigned char c = (unsigned char)ch;
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' || c == ':' || c >= 0x80;
}

static int name_char(char c)
{
    return name_start(c) || (c >= '0' && c <= '9') || c == '-' || c == '.';
}

static size_t skip_space(struct parser *p)
{
    size_t start = p->pos;
    while (p->pos < p->len && is_space(p->s[p->pos]))
        p->pos++;
    return p->pos - start;
}

static int at(const struct parser *p, const char *lit)
{
    size_t n = strlen(lit);
    return p->len - p->pos >= n && memcmp(p->s + p->pos, lit, n) == 0;
}

/* A name at p->pos into [*start, *start + *n); what says what it names. */
static int parse_name(struct parser *p, const char *what, size_t *start, size_t *n)
{
    if (p->pos >= p->len || !name_start(p->s[p->pos]))
        return fail(p, p->pos, "expected %s", what);
    *start = p->pos;
    while (p->pos < p->len && name_char(p->s[p->pos]))
        p->pos++;
    *n = p->pos - *start;
    return 0;
}

/* Appends s[0..n) with line breaks normalized (section 2.11): CR LF and a
 * lone CR become LF. A run never ends between a CR and its LF: runs end at
 * '<', '&' or "]]>". */
static void add_text(struct buf *b, const char *s, size_t n)
{
    size_t run = 0;
    buf_grow(b, n);
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '\r')
            continue;
        buf_add(b, s + run, i - run);
        buf_add(b, "\n", 1);
        if (i + 1 < n && s[i + 1] == '\n')
            i++;
        run = i + 1;
    }
    buf_add(b, s + run, n - run);
}

static void add_utf8(struct buf *b, uint32_t cp)
{
    char u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (char)cp, n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xc0 | cp >> 6), u[1] = (char)(0x80 | (cp & 0x3f)), n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xe0 | cp >> 12), u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[2] = (char)(0x80 | (cp & 0x3f)), n = 3;
    } else {
        u[0] = (char)(0xf0 | cp >> 18), u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3f)), u[3] = (char)(0x80 | (cp & 0x3f)), n = 4;
    }
    buf_add(b, u, n);
}

/* A reference at p->pos (the '&'), decoded into out (NULL: only checked).
 * Section 4.6 predefines five entities and nothing else can be declared here;
 * section 4.1 character references, any number of leading zeros. */
static int parse_ref(struct parser *p, struct buf *out)
{
    static const struct {
        const char *name;
        char c;
    } ents[] = {{"amp", '&'}, {"lt", '<'}, {"gt", '>'}, {"quot", '"'}, {"apos", '\''}};
    size_t amp = p->pos;

    p->pos++;
    if (p->pos < p->len && p->s[p->pos] == '#') {
        int hex = 0, digits = 0;
        uint32_t cp = 0;
        p->pos++;
        if (p->pos < p->len && p->s[p->pos] == 'x') {
            hex = 1;
            p->pos++;
        }
        for (; p->pos < p->len; p->pos++) {
            char c = p->s[p->pos];
            int v = c >= '0' && c <= '9'          ? c - '0'
                    : hex && c >= 'a' && c <= 'f' ? c - 'a' + 10
                    : hex && c >= 'A' && c <= 'F' ? c - 'A' + 10
                                                  : -1;
            if (v < 0)
                break;
            digits++;
            /* Saturate above the range: the value is refused below anyway. */
            cp = cp > 0x10ffff ? cp : cp * (hex ? 16 : 10) + (uint32_t)v;
        }
        if (!digits)
            return fail(p, p->pos, "expected %s digits in the character reference",
                        hex ? "hexadecimal" : "decimal");
        if (p->pos >= p->len || p->s[p->pos] != ';')
            return fail(p, p->pos, "expected ';' to end the character reference");
        p->pos++;
        if (cp == 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return fail(p, amp, "expected a character reference to a character, found one to %s",
                        cp == 0         ? "U+0000"
                        : cp > 0x10ffff ? "beyond U+10FFFF"
                                        : "a surrogate");
        if (out)
            add_utf8(out, cp);
        return 0;
    }
    size_t start = p->pos;
    while (p->pos < p->len && name_char(p->s[p->pos]))
        p->pos++;
    size_t n = p->pos - start;
    if (p->pos >= p->len || p->s[p->pos] != ';' || n == 0)
        return fail(p, amp,
                    "expected a reference (&amp; &lt; &gt; &quot; &apos; &#N; &#xN;) "
                    "after '&'");
    for (size_t i = 0; i < sizeof(ents) / sizeof(*ents); i++) {
        if (strlen(ents[i].name) == n && memcmp(ents[i].name, p->s + start, n) == 0) {
            p->pos++;
            if (out)
                buf_add(out, &ents[i].c, 1);
            return 0;
        }
    }
    return fail_name(p, amp, "expected one of &amp; &lt; &gt; &quot; &apos;, found &", p->s + start,
                     n, "; (no other entity exists here)");
}

/* ---- markup --------------------------------------------------------------- */

/* "<!--" at p->pos. Section 2.5: "--" may not occur inside a comment. */
static int parse_comment(struct parser *p)
{
    size_t open = p->pos;
    const char *s = p->s + open + 4, *end = p->s + p->len;
    const char *dd = memmem(s, (size_t)(end - s), "--", 2);
    if (!dd)
        return fail(p, open, "expected '-->' to end this comment");
    if (dd + 2 >= end || dd[2] != '>')
        return fail(p, (size_t)(dd - p->s), "expected '-->': '--' may not occur in a comment");
    p->pos = (size_t)(dd - p->s) + 3;
    return 0;
}

/* Attributes after an element's (or the declaration's) name, up to but not
 * including its '>', '/>' or '?>'. Section 3.1: whitespace before each, a
 * name, '=', a value in ' or " without '<' and with well-formed references,
 * no name twice. With decl, the declaration's pseudo-attributes are checked
 * (section 2.8): version 1.x first, then an optional encoding that must be
 * UTF-8 (all we read) and an optional standalone yes or no. */
static int parse_attrs(struct parser *p, const char *elem, size_t elen, int decl)
{
    size_t names[S3XML_ATTRS_MAX], lens[S3XML_ATTRS_MAX], n = 0;
    static const char *const pseudo[] = {"version", "encoding", "standalone"};
    size_t next_pseudo = 0;
    struct buf val = BUF_INIT;
    int rc = 0;

    for (;;) {
        size_t ws = skip_space(p), start, nlen;
        if (p->pos >= p->len) {
            rc = decl ? fail(p, p->pos, "expected '?>' to end the XML declaration")
                      : fail_name(p, p->pos, "expected '>' to end <", elem, elen,
                                  ">, found the end of the document");
            goto out;
        }
        char c = p->s[p->pos];
        if (decl ? at(p, "?>") : (c == '>' || at(p, "/>")))
            break;
        if (!ws) {
            rc = decl ? fail(p, p->pos, "expected whitespace or '?>' in the XML declaration")
                      : fail_name(p, p->pos, "expected whitespace, '>' or '/>' in <", elem, elen,
                                  ">");
            goto out;
        }
        if ((rc = parse_name(p,
                             decl ? "a pseudo-attribute or '?>'" : "an attribute name, '>' or '/>'",
                             &start, &nlen)))
            goto out;
        if (n == S3XML_ATTRS_MAX) {
            rc = fail(p, start, "expected at most %d attributes on one element", S3XML_ATTRS_MAX);
            goto out;
        }
        /* At most S3XML_ATTRS_MAX names, each compared once per later one:
         * bounded work per byte of names, so still linear. */
        for (size_t i = 0; i < n; i++) {
            if (lens[i] == nlen && memcmp(p->s + names[i], p->s + start, nlen) == 0) {
                rc = fail_name(p, start, "expected each attribute once, found ", p->s + start, nlen,
                               " again");
                goto out;
            }
        }
        names[n] = start, lens[n] = nlen, n++;
        skip_space(p);
        if (p->pos >= p->len || p->s[p->pos] != '=') {
            rc = fail_name(p, p->pos, "expected '=' after the attribute name ", p->s + start, nlen,
                           "");
            goto out;
        }
        p->pos++;
        skip_space(p);
        if (p->pos >= p->len || (p->s[p->pos] != '"' && p->s[p->pos] != '\'')) {
            rc = fail(p, p->pos, "expected a quoted attribute value (' or \")");
            goto out;
        }
        char q = p->s[p->pos++];
        size_t vstart = p->pos;
        buf_reset(&val);
        while (p->pos < p->len && p->s[p->pos] != q) {
            if (p->s[p->pos] == '<') {
                rc =
                    fail(p, p->pos, "expected the closing %c of the attribute value, found '<'", q);
                goto out;
            }
            if (p->s[p->pos] == '&') {
                if ((rc = parse_ref(p, decl ? &val : NULL)))
                    goto out;
                continue;
            }
            if (decl)
                buf_add(&val, p->s + p->pos, 1);
            p->pos++;
        }
        if (p->pos >= p->len) {
            rc = fail(p, vstart - 1, "expected the closing %c of this attribute value", q);
            goto out;
        }
        p->pos++;
        if (!decl)
            continue;
        /* The declaration: each pseudo-attribute in its place, once. */
        size_t k = next_pseudo;
        while (k < 3 && (strlen(pseudo[k]) != nlen || memcmp(pseudo[k], p->s + start, nlen)))
            k++;
        if (k == 3 || (next_pseudo == 0 && k != 0)) {
            static const char *const want[] = {
                "expected version first in the XML declaration, found ",
                "expected encoding, standalone or '?>' in the XML declaration, found ",
                "expected standalone or '?>' in the XML declaration, found ",
                "expected '?>' in the XML declaration, found "};
            rc = fail_name(p, start, want[next_pseudo], p->s + start, nlen, "");
            goto out;
        }
        next_pseudo = k + 1;
        const char *v = val.data ? val.data : "";
        if (k == 0 &&
            !(str_starts_with(v, "1.") && v[2] && strspn(v + 2, "0123456789") == strlen(v + 2)))
            rc = fail(p, vstart, "expected version=\"1.0\"");
        else if (k == 1 && strcasecmp(v, "UTF-8") != 0)
            rc = fail(p, vstart, "expected encoding=\"UTF-8\" (the only encoding read)");
        else if (k == 2 && strcmp(v, "yes") != 0 && strcmp(v, "no") != 0)
            rc = fail(p, vstart, "expected standalone=\"yes\" or \"no\"");
        if (rc)
            goto out;
    }
    if (decl && next_pseudo == 0)
        rc = fail(p, p->pos, "expected version=\"1.0\" in the XML declaration");
out:
    buf_free(&val);
    return rc;
}

/* The XML declaration, only at the very start (after a byte order mark) as
 * section 2.8 requires; "<?xml" there followed by whitespace. */
static int parse_decl(struct parser *p)
{
    p->pos += 5;
    if (p->pos >= p->len || !is_space(p->s[p->pos]))
        return fail(p, p->pos, "expected whitespace and version after '<?xml'");
    int rc = parse_attrs(p, "?xml", 4, 1);
    if (rc == 0)
        p->pos += 2;
    return rc;
}

/* Markup after '<' that is neither an element nor an end tag, comment or
 * CDATA section (those are handled by the caller): always an error, worded
 * for what it is. */
static int refuse_markup(struct parser *p, const char *expected)
{
    if (at(p, "<!DOCTYPE"))
        return fail(p, p->pos, "expected %s, found a DOCTYPE (refused: no entity declarations)",
                    expected);
    if (at(p, "<?xml") && p->len - p->pos > 5 &&
        (is_space(p->s[p->pos + 5]) || p->s[p->pos + 5] == '?'))
        return fail(p, p->pos,
                    "expected %s, found an XML declaration (only allowed at the very start)",
                    expected);
    if (at(p, "<?"))
        return fail(p, p->pos, "expected %s, found a processing instruction (refused)", expected);
    if (at(p, "<!"))
        return fail(p, p->pos, "expected %s, found a '<!' declaration (refused)", expected);
    return fail(p, p->pos, "expected %s", expected);
}

/* ---- the tree ---------------------------------------------------------------- */

void s3xml_free(struct s3xml_node *n)
{
    /* Depth is bounded by S3XML_DEPTH_MAX for a parsed tree, so recursion is. */
    if (!n)
        return;
    for (size_t i = 0; i < n->n_kids; i++)
        s3xml_free(n->kids[i]);
    free(n->kids);
    free(n->name);
    if (n->text != empty_text)
        free(n->text);
    free(n);
}

static void add_kid(struct frame *f, struct s3xml_node *kid)
{
    struct s3xml_node *n = f->node;
    if (n->n_kids == f->cap) {
        f->cap = f->cap ? f->cap * 2 : 4;
        n->kids = xrealloc(n->kids, f->cap * sizeof(*n->kids));
    }
    n->kids[n->n_kids++] = kid;
}

/* Gives the frame's text to its node, trimmed to size. */
static void close_frame(struct frame *f)
{
    if (f->text.len == 0) {
        buf_free(&f->text);
        f->node->text = empty_text;
        return;
    }
    size_t len;
    char *t = buf_detach(&f->text, &len);
    f->node->text = xrealloc(t, len + 1);
}

/* A start tag at p->pos ('<' then a name start). Makes the node, hangs it
 * under parent (NULL for the root) and says whether it is empty (<a/>). */
static int start_tag(struct parser *p, struct frame *parent, struct s3xml_node **out, int *empty)
{
    size_t open = p->pos, start, n;
    int rc;

    if (p->nodes == S3XML_NODES_MAX)
        return fail(p, open, "expected at most %d elements in one document", S3XML_NODES_MAX);
    p->pos++;
    if ((rc = parse_name(p, "an element name after '<'", &start, &n)))
        return rc;
    if ((rc = parse_attrs(p, p->s + start, n, 0)))
        return rc;
    struct s3xml_node *node = xcalloc(1, sizeof(*node));
    node->name = xstrndup(p->s + start, n);
    p->nodes++;
    if (parent)
        add_kid(parent, node);
    *out = node;
    *empty = p->s[p->pos] == '/';
    p->pos += *empty ? 2 : 1;
    if (*empty)
        node->text = empty_text;
    return 0;
}

/* An end tag at p->pos ("</"), which must close f's element (section 3: the
 * Name in an element's end-tag must match the element type in the start-tag). */
static int end_tag(struct parser *p, const struct frame *f)
{
    size_t open = p->pos, start, n;
    const char *want = f->node->name;
    int rc;

    p->pos += 2;
    if ((rc = parse_name(p, "an element name after '</'", &start, &n)))
        return rc;
    if (n != strlen(want) || memcmp(p->s + start, want, n) != 0) {
        struct buf b = BUF_INIT;
        buf_adds(&b, "expected </");
        add_shown(&b, want, strlen(want));
        buf_adds(&b, ">, found </");
        add_shown(&b, p->s + start, n);
        buf_adds(&b, ">");
        rc = fail(p, open, "%s", b.data);
        buf_free(&b);
        return rc;
    }
    skip_space(p);
    if (p->pos >= p->len || p->s[p->pos] != '>')
        return fail_name(p, p->pos, "expected '>' to end </", want, n, ">");
    p->pos++;
    return 0;
}

/* Character data up to the next '<' or '&' into f's text. Section 2.4: "]]>"
 * may not occur in it. */
static int char_data(struct parser *p, struct frame *f)
{
    size_t start = p->pos;
    while (p->pos < p->len && p->s[p->pos] != '<' && p->s[p->pos] != '&') {
        if (p->s[p->pos] == '>' && p->pos - start >= 2 && p->s[p->pos - 1] == ']' &&
            p->s[p->pos - 2] == ']')
            return fail(p, p->pos - 2, "expected text, found ']]>' outside a CDATA section");
        p->pos++;
    }
    add_text(&f->text, p->s + start, p->pos - start);
    return 0;
}

/* Whitespace and comments outside the root element; stops at anything else. */
static int misc(struct parser *p)
{
    int rc;
    for (;;) {
        skip_space(p);
        if (!at(p, "<!--"))
            return 0;
        if ((rc = parse_comment(p)))
            return rc;
    }
}

int s3xml_parse(const char *doc, size_t len, struct s3xml_node **out, struct sw_err *err)
{
    struct parser p = {doc, len, 0, 0, err};
    struct frame stack[S3XML_DEPTH_MAX];
    struct s3xml_node *root = NULL;
    size_t depth = 0;
    int rc, empty;

    *out = NULL;
    if (len > S3XML_INPUT_MAX)
        return sw_err_set(err, SW_EINVAL,
                          "line 1, column 1: expected a document of at most %d bytes, found %zu",
                          S3XML_INPUT_MAX, len);
    if (!doc) {
        p.s = "";
        p.len = 0;
    }
    if ((rc = check_chars(&p)))
        return rc;
    if (at(&p, "\xef\xbb\xbf")) /* a byte order mark (section 4.3.3, F.1) */
        p.pos += 3;
    /* "<?xml" then whitespace, '?' or the end is a declaration (maybe a bad
     * one); "<?xml-stylesheet" is a processing instruction, refused below. */
    if (at(&p, "<?xml") &&
        (p.len - p.pos == 5 || is_space(p.s[p.pos + 5]) || p.s[p.pos + 5] == '?') &&
        (rc = parse_decl(&p)))
        return rc;
    if ((rc = misc(&p)))
        return rc;
    if (p.pos >= p.len)
        return fail(&p, p.pos, "expected the root element, found the end of the document");
    if (p.s[p.pos] != '<')
        return fail(&p, p.pos, "expected '<' to start the root element, found text");
    if (p.pos + 1 >= p.len || !name_start(p.s[p.pos + 1]))
        return refuse_markup(&p, "the root element");
    if ((rc = start_tag(&p, NULL, &root, &empty)))
        return rc;
    if (!empty)
        stack[depth++] = (struct frame){root, BUF_INIT, 0};

    while (depth > 0) {
        struct frame *f = &stack[depth - 1];
        if (p.pos >= p.len) {
            rc = fail_name(&p, p.pos, "expected </", f->node->name, strlen(f->node->name),
                           ">, found the end of the document");
            goto out;
        }
        char c = p.s[p.pos];
        if (c == '&') {
            if ((rc = parse_ref(&p, &f->text)))
                goto out;
        } else if (c != '<') {
            if ((rc = char_data(&p, f)))
                goto out;
        } else if (at(&p, "</")) {
            if ((rc = end_tag(&p, f)))
                goto out;
            close_frame(f);
            depth--;
        } else if (at(&p, "<!--")) {
            if ((rc = parse_comment(&p)))
                goto out;
        } else if (at(&p, "<![CDATA[")) {
            size_t open = p.pos, from = p.pos + 9;
            const char *e = memmem(p.s + from, p.len - from, "]]>", 3);
            if (!e) {
                rc = fail(&p, open, "expected ']]>' to end this CDATA section");
                goto out;
            }
            add_text(&f->text, p.s + from, (size_t)(e - p.s) - from);
            p.pos = (size_t)(e - p.s) + 3;
        } else if (p.pos + 1 < p.len && name_start(p.s[p.pos + 1])) {
            struct s3xml_node *kid;
            if (depth == S3XML_DEPTH_MAX) {
                rc = fail(&p, p.pos, "expected at most %d nested elements", S3XML_DEPTH_MAX);
                goto out;
            }
            if ((rc = start_tag(&p, f, &kid, &empty)))
                goto out;
            if (!empty)
                stack[depth++] = (struct frame){kid, BUF_INIT, 0};
        } else {
            rc = refuse_markup(&p, "an element, an end tag, a comment or CDATA");
            goto out;
        }
    }

    if ((rc = misc(&p)))
        goto out;
    if (p.pos < p.len) {
        rc = p.s[p.pos] == '<' && p.pos + 1 < p.len && name_start(p.s[p.pos + 1])
                 ? fail(&p, p.pos, "expected the end of the document, found a second root element")
             : p.s[p.pos] == '<'
                 ? refuse_markup(&p, "the end of the document after the root element")
                 : fail(&p, p.pos,
                        "expected the end of the document, found text after the root "
                        "element");
        goto out;
    }
    *out = root;
    root = NULL;
out:
    /* Open frames' nodes are in the tree already; only their text is apart. */
    for (size_t i = 0; i < depth; i++) {
        buf_free(&stack[i].text);
        stack[i].node->text = empty_text;
    }
    s3xml_free(root);
    return rc;
}

/* ---- reading the tree and writing ------------------------------------------ */

const struct s3xml_node *s3xml_child(const struct s3xml_node *n, const char *name)
{
    if (!n || !name)
        return NULL;
    for (size_t i = 0; i < n->n_kids; i++)
        if (strcmp(n->kids[i]->name, name) == 0)
            return n->kids[i];
    return NULL;
}

const char *s3xml_text(const struct s3xml_node *n, const char *name)
{
    const struct s3xml_node *k = s3xml_child(n, name);
    return k ? k->text : NULL;
}

void s3xml_escape(struct buf *b, const char *s)
{
    size_t run = 0, i;
    for (i = 0; s[i]; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *e = c == '&'    ? "&amp;"
                        : c == '<'  ? "&lt;"
                        : c == '>'  ? "&gt;"
                        : c == '"'  ? "&quot;"
                        : c == '\'' ? "&apos;"
                                    : NULL;
        if (!e && (c >= 0x20 || c == '\t' || c == '\n'))
            continue;
        buf_add(b, s + run, i - run);
        if (e)
            buf_adds(b, e);
        else
            buf_addf(b, "&#%u;", c);
        run = i + 1;
    }
    buf_add(b, s + run, i - run);
}
