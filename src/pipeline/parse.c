/*
 * The `${{ }}` language: lexer and parser.
 *
 * The grammar, from loosest to tightest binding (GitHub's):
 *
 *     or      := and ( '||' and )*
 *     and     := eq ( '&&' eq )*
 *     eq      := rel ( ( '==' | '!=' ) rel )*
 *     rel     := unary ( ( '<' | '<=' | '>' | '>=' ) unary )*
 *     unary   := '!' unary | postfix
 *     postfix := call ( '[' ( '*' | or ) ']' | '.' ( name | '*' ) )*   -- only after a
 *                named value, a call or a parenthesised group
 *     call    := name '(' args ')' | name | primary
 *     primary := null | true | false | number | 'string' | '(' or ')'
 *
 * The one idea: this follows GitHub's own parser step for step, because what
 * is an error, where, and which error comes first are part of the language.
 * The whole input is tokenised before parsing (so a lexical error anywhere
 * wins over a syntax error earlier on), a name not followed by '(' must be a
 * known named value at the moment it is read, function arguments are parsed
 * before the function name is checked, and the nesting depth is counted at
 * exactly the steps GitHub counts it, so the same expressions hit the limit
 * of 50. Chains of comparisons are kept flat (evaluated left to right), so
 * the tree is never deeper than that limit allows and evaluating or freeing
 * it cannot exhaust the stack.
 */
#include "pipeline/internal.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum tok_type {
    T_EOF,
    T_LPAREN,
    T_RPAREN,
    T_LBRACKET,
    T_RBRACKET,
    T_COMMA,
    T_DOT,
    T_BANG,
    T_NE,
    T_EQ,
    T_GT,
    T_GE,
    T_LT,
    T_LE,
    T_AND,
    T_OR,
    T_STAR,
    T_NUMBER,
    T_STRING,
    T_IDENT,
    T_TRUE,
    T_FALSE,
    T_NULL,
};

struct token {
    enum tok_type type;
    size_t start, end; /* the lexeme: src[start..end) */
    double num;        /* T_NUMBER */
};

struct parser {
    const char *src;
    size_t len;
    const struct pipeline_expr_opts *opts;
    struct token *toks;
    size_t ntoks, at;
    int depth;
    int has_status;
    size_t err_at;
    struct sw_err *err;
    int failed;
};

/* ---- errors -------------------------------------------------------------------------- */

/* Appends s[0..n) for a message: at most max bytes (cut at a character, then
 * "..."), and a NUL, which would end the message, as "\0". */
static void add_quoted(struct buf *b, const char *s, size_t n, size_t max)
{
    size_t end = n;

    if (n > max) {
        end = max;
        while (end > 0 && ((unsigned char)s[end] & 0xc0) == 0x80)
            end--;
    }
    for (size_t i = 0; i < end; i++) {
        if (s[i] == '\0')
            buf_adds(b, "\\0");
        else
            buf_add(b, &s[i], 1);
    }
    if (end < n)
        buf_adds(b, "...");
}

/* "<what>: '<text>'. Located at position N within expression: <src>" (GitHub's
 * wording; N counts characters from 1, over the whole expression). The quoted
 * text is kept short so that the position always fits in the message. */
static void fail_at(struct parser *p, size_t pos, const char *what, const char *text,
                    size_t text_len)
{
    struct buf b = BUF_INIT;

    if (p->failed)
        return;
    p->failed = 1;
    p->err_at = pos;
    buf_adds(&b, what);
    if (text) {
        buf_adds(&b, ": '");
        add_quoted(&b, text, text_len, 200);
        buf_adds(&b, "'");
    }
    buf_addf(&b, ". Located at position %zu within expression: ", expr_char_count(p->src, pos) + 1);
    add_quoted(&b, p->src, p->len, sizeof(p->err->msg));
    sw_err_set(p->err, PIPELINE_ESYNTAX, "%s", b.data);
    buf_free(&b);
}

/* The text GitHub quotes for a token: a string's value, else its lexeme. */
static void fail_tok(struct parser *p, const struct token *t, const char *what)
{
    if (t->type == T_EOF) {
        fail_at(p, t->start, what, "EOF", 3);
    } else if (t->type == T_STRING) {
        struct buf v = BUF_INIT;
        const char *s = p->src + t->start + 1;
        size_t n = t->end - t->start - 2;
        for (size_t i = 0; i < n; i++) {
            buf_add(&v, &s[i], 1);
            if (s[i] == '\'')
                i++;
        }
        fail_at(p, t->start, what, v.data ? v.data : "", v.len);
        buf_free(&v);
    } else {
        fail_at(p, t->start, what, p->src + t->start, t->end - t->start);
    }
}

/* ---- lexer ------------------------------------------------------------------------------ */

static int boundary(const struct parser *p, size_t i)
{
    switch (p->src[i]) {
    case '(':
    case '[':
    case ')':
    case ']':
    case ',':
    case '.':
    case '!':
    case '>':
    case '<':
    case '=':
    case '&':
    case '|':
        return 1;
    }
    return expr_space_len((const unsigned char *)p->src + i, p->len - i) > 0;
}

static enum tok_type previous_type(const struct parser *p)
{
    return p->ntoks ? p->toks[p->ntoks - 1].type : T_EOF;
}

static void add_token(struct parser *p, enum tok_type type, size_t start, size_t end, double num)
{
    struct token *t = &p->toks[p->ntoks++];
    t->type = type;
    t->start = start;
    t->end = end;
    t->num = num;
}

/* A number runs to the next boundary, dots included ("1.5", ".5", "-2e3"). */
static size_t lex_number(struct parser *p, size_t i)
{
    size_t start = i;
    double v;

    while (i < p->len && (!boundary(p, i) || p->src[i] == '.'))
        i++;
    v = expr_parse_number(p->src + start, i - start);
    if (isnan(v))
        fail_at(p, start, "Unexpected symbol", p->src + start, i - start);
    else
        add_token(p, T_NUMBER, start, i, v);
    return i;
}

static int legal_identifier(const char *s, size_t n)
{
    if (n == 0 || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z') || s[0] == '_'))
        return 0;
    for (size_t i = 1; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

/* A word runs to the next boundary; start may hold a lone '=', '&' or '|',
 * which makes the word illegal (GitHub reports "=2" in "1 =2", not "="). */
static size_t lex_word(struct parser *p, size_t start, size_t i)
{
    const char *w = p->src + start;
    size_t n;
    enum tok_type type = T_IDENT;
    double num = 0;

    while (i < p->len && !boundary(p, i))
        i++;
    n = i - start;
    if (!legal_identifier(w, n)) {
        fail_at(p, start, "Unexpected symbol", w, n);
        return i;
    }
    /* Keywords are case-sensitive, and after a '.' they are property names. */
    if (previous_type(p) != T_DOT) {
        if (n == 4 && memcmp(w, "true", 4) == 0)
            type = T_TRUE;
        else if (n == 5 && memcmp(w, "false", 5) == 0)
            type = T_FALSE;
        else if (n == 4 && memcmp(w, "null", 4) == 0)
            type = T_NULL;
        else if (n == 3 && memcmp(w, "NaN", 3) == 0)
            type = T_NUMBER, num = NAN;
        else if (n == 8 && memcmp(w, "Infinity", 8) == 0)
            type = T_NUMBER, num = INFINITY;
    }
    add_token(p, type, start, i, num);
    return i;
}

/* 'it''s': a quote inside is written twice. */
static size_t lex_string(struct parser *p, size_t i)
{
    size_t start = i++;

    for (;;) {
        if (i >= p->len) {
            fail_at(p, start, "Unexpected symbol", p->src + start, p->len - start);
            return i;
        }
        if (p->src[i] == '\'') {
            if (i + 1 < p->len && p->src[i + 1] == '\'') {
                i += 2;
                continue;
            }
            add_token(p, T_STRING, start, i + 1, 0);
            return i + 1;
        }
        i++;
    }
}

static void lex(struct parser *p)
{
    size_t i = 0, k;

    /* at most one token per byte, plus the end */
    p->toks = xcalloc(p->len + 1, sizeof(*p->toks));
    while (i < p->len && !p->failed) {
        size_t start = i;
        char c = p->src[i];
        char next = i + 1 < p->len ? p->src[i + 1] : '\0';
        enum tok_type prev;

        if ((k = expr_space_len((const unsigned char *)p->src + i, p->len - i)) > 0) {
            i += k;
            continue;
        }
        switch (c) {
        case '(':
            add_token(p, T_LPAREN, start, ++i, 0);
            break;
        case ')':
            add_token(p, T_RPAREN, start, ++i, 0);
            break;
        case '[':
            add_token(p, T_LBRACKET, start, ++i, 0);
            break;
        case ']':
            add_token(p, T_RBRACKET, start, ++i, 0);
            break;
        case ',':
            add_token(p, T_COMMA, start, ++i, 0);
            break;
        case '*':
            add_token(p, T_STAR, start, ++i, 0);
            break;
        case '.':
            /* a dereference after something that has properties, else a number (".5") */
            prev = previous_type(p);
            if (prev == T_IDENT || prev == T_RBRACKET || prev == T_RPAREN || prev == T_STAR)
                add_token(p, T_DOT, start, ++i, 0);
            else
                i = lex_number(p, i);
            break;
        case '-':
        case '+':
            i = lex_number(p, i);
            break;
        case '!':
            i += next == '=' ? 2 : 1;
            add_token(p, next == '=' ? T_NE : T_BANG, start, i, 0);
            break;
        case '<':
            i += next == '=' ? 2 : 1;
            add_token(p, next == '=' ? T_LE : T_LT, start, i, 0);
            break;
        case '>':
            i += next == '=' ? 2 : 1;
            add_token(p, next == '=' ? T_GE : T_GT, start, i, 0);
            break;
        case '=':
        case '&':
        case '|':
            if (next == c) {
                i += 2;
                add_token(p, c == '=' ? T_EQ : c == '&' ? T_AND : T_OR, start, i, 0);
            } else {
                i = lex_word(p, start, i + 1);
            }
            break;
        case '\'':
            i = lex_string(p, i);
            break;
        default:
            if (c >= '0' && c <= '9')
                i = lex_number(p, i);
            else
                i = lex_word(p, start, i + 1);
        }
    }
    add_token(p, T_EOF, p->len, p->len, 0);
}

/* ---- tree ------------------------------------------------------------------------------ */

static void node_free(struct expr_node *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->nargs; i++)
        node_free(n->args[i]);
    free(n->args);
    free(n->ops);
    free(n->name);
    pipeline_value_clear(&n->lit);
    free(n);
}

static struct expr_node *node_new(enum expr_node_type type, size_t pos)
{
    struct expr_node *n = xcalloc(1, sizeof(*n));
    n->type = type;
    n->pos = pos;
    return n;
}

static void node_add(struct expr_node *n, struct expr_node *arg)
{
    /* grow by doubling: a long "a || b || ..." adds thousands of arguments */
    if ((n->nargs & (n->nargs - 1)) == 0)
        n->args = xrealloc(n->args, (n->nargs ? n->nargs * 2 : 1) * sizeof(*n->args));
    n->args[n->nargs++] = arg;
}

/* ---- parser ------------------------------------------------------------------------------ */

static const struct token *peek(const struct parser *p)
{
    return &p->toks[p->at];
}

static const struct token *previous(const struct parser *p)
{
    return &p->toks[p->at ? p->at - 1 : 0];
}

static int at_end(const struct parser *p)
{
    return peek(p)->type == T_EOF;
}

static int check(const struct parser *p, enum tok_type t)
{
    return !at_end(p) && peek(p)->type == t;
}

static int match(struct parser *p, enum tok_type t)
{
    if (!check(p, t))
        return 0;
    p->at++;
    return 1;
}

static int incr_depth(struct parser *p)
{
    if (++p->depth > PIPELINE_EXPR_MAX_DEPTH) {
        fail_tok(p, peek(p), "Exceeded max expression depth 50");
        return -1;
    }
    return 0;
}

static struct expr_node *expression(struct parser *p);

static const struct {
    const char *name;
    enum expr_fn fn;
    size_t min, max;
} functions[] = {
    {"contains", F_CONTAINS, 2, 2},   {"startswith", F_STARTSWITH, 2, 2},
    {"endswith", F_ENDSWITH, 2, 2},   {"format", F_FORMAT, 1, 255},
    {"join", F_JOIN, 1, 2},           {"tojson", F_TOJSON, 1, 1},
    {"fromjson", F_FROMJSON, 1, 1},   {"hashfiles", F_HASHFILES, 1, 255},
    {"case", F_CASE, 3, SIZE_MAX},    {"success", F_SUCCESS, 0, 0},
    {"failure", F_FAILURE, 0, 0},     {"always", F_ALWAYS, 0, 0},
    {"cancelled", F_CANCELLED, 0, 0},
};

static int known_name(const struct parser *p, const char *name, size_t n)
{
    if (!p->opts || !p->opts->names)
        return 1;
    for (const char *const *k = p->opts->names; *k; k++)
        if (expr_eq_fold(*k, strlen(*k), name, n))
            return 1;
    return 0;
}

/* Checks a call's function and argument count, after its arguments parsed. */
static int check_function(struct parser *p, const struct token *id, struct expr_node *call)
{
    const char *name = p->src + id->start;
    size_t n = id->end - id->start;
    unsigned flags = p->opts ? p->opts->flags : 0;

    for (size_t i = 0; i < sizeof(functions) / sizeof(*functions); i++) {
        if (strlen(functions[i].name) != n || !expr_eq_fold(functions[i].name, n, name, n))
            continue;
        enum expr_fn fn = functions[i].fn;
        int status = fn == F_SUCCESS || fn == F_FAILURE || fn == F_ALWAYS || fn == F_CANCELLED;
        if ((status && (flags & PIPELINE_EXPR_NO_STATUS)) ||
            (fn == F_HASHFILES && (flags & PIPELINE_EXPR_NO_HASHFILES)))
            break;
        if (call->nargs < functions[i].min)
            fail_tok(p, id, "Too few parameters supplied");
        else if (call->nargs > functions[i].max)
            fail_tok(p, id, "Too many parameters supplied");
        else if (fn == F_CASE && call->nargs % 2 == 0)
            fail_tok(p, id,
                     "Even number of parameters supplied, requires an odd number of parameters");
        call->fn = fn;
        p->has_status |= status;
        return p->failed ? -1 : 0;
    }
    fail_tok(p, id, "Unrecognized function");
    return -1;
}

static struct expr_node *literal_number(size_t pos, double v)
{
    struct expr_node *n = node_new(N_LITERAL, pos);
    n->lit.kind = PIPELINE_NUMBER;
    n->lit.number = v;
    return n;
}

static struct expr_node *literal_string(size_t pos, const char *s, size_t len, int quoted)
{
    struct expr_node *n = node_new(N_LITERAL, pos);
    struct buf v = BUF_INIT;

    for (size_t i = 0; i < len; i++) {
        buf_add(&v, &s[i], 1);
        if (quoted && s[i] == '\'') /* '' stands for ' */
            i++;
    }
    n->lit.kind = PIPELINE_STRING;
    n->lit.str = buf_detach(&v, &n->lit.len);
    return n;
}

static struct expr_node *primary(struct parser *p, int *indexable)
{
    const struct token *t = peek(p);
    struct expr_node *n;

    *indexable = 0;
    switch (at_end(p) ? T_EOF : t->type) {
    case T_FALSE:
    case T_TRUE:
        p->at++;
        n = node_new(N_LITERAL, t->start);
        n->lit.kind = PIPELINE_BOOLEAN;
        n->lit.boolean = t->type == T_TRUE;
        return n;
    case T_NULL:
        p->at++;
        return node_new(N_LITERAL, t->start);
    case T_NUMBER:
        p->at++;
        return literal_number(t->start, t->num);
    case T_STRING:
        p->at++;
        return literal_string(t->start, p->src + t->start + 1, t->end - t->start - 2, 1);
    case T_LPAREN:
        p->at++;
        n = expression(p);
        if (!n)
            return NULL;
        if (at_end(p)) {
            fail_tok(p, previous(p), "Unexpected end of expression");
        } else if (!match(p, T_RPAREN)) {
            fail_tok(p, peek(p), "Unexpected symbol");
        } else {
            *indexable = 1;
            return n;
        }
        node_free(n);
        return NULL;
    case T_EOF:
        fail_tok(p, previous(p), "Unexpected end of expression");
        return NULL;
    default:
        fail_tok(p, t, "Unexpected symbol");
        return NULL;
    }
}

static struct expr_node *call(struct parser *p, int *indexable)
{
    const struct token *id = peek(p);
    struct expr_node *n;

    if (!check(p, T_IDENT))
        return primary(p, indexable);
    p->at++;
    *indexable = 1;
    if (!match(p, T_LPAREN)) {
        if (!known_name(p, p->src + id->start, id->end - id->start)) {
            fail_tok(p, id, "Unrecognized named-value");
            return NULL;
        }
        n = node_new(N_NAME, id->start);
        n->name = xstrndup(p->src + id->start, id->end - id->start);
        n->name_len = id->end - id->start;
        return n;
    }
    n = node_new(N_CALL, id->start);
    while (!match(p, T_RPAREN)) {
        struct expr_node *arg = expression(p);
        if (!arg)
            goto fail;
        node_add(n, arg);
        if (!check(p, T_RPAREN) && !match(p, T_COMMA)) {
            fail_tok(p, peek(p), "Unexpected symbol");
            goto fail;
        }
    }
    if (check_function(p, id, n) == 0)
        return n;
fail:
    node_free(n);
    return NULL;
}

static struct expr_node *postfix(struct parser *p)
{
    int indexable, steps = 0;
    struct expr_node *n = call(p, &indexable);

    if (!n)
        return NULL;
    while (indexable) {
        const struct token *t = peek(p);
        struct expr_node *idx = NULL, *access;

        if (match(p, T_LBRACKET)) {
            if (!match(p, T_STAR) && !(idx = expression(p)))
                goto fail;
            if (!match(p, T_RBRACKET)) {
                fail_tok(p, peek(p), "Unexpected symbol");
                node_free(idx);
                goto fail;
            }
            steps++;
            if (incr_depth(p) < 0) {
                node_free(idx);
                goto fail;
            }
        } else if (match(p, T_DOT)) {
            const struct token *prop = peek(p);
            steps++;
            if (incr_depth(p) < 0)
                goto fail;
            if (match(p, T_IDENT)) {
                idx = literal_string(prop->start, p->src + prop->start, prop->end - prop->start, 0);
            } else if (!match(p, T_STAR)) {
                fail_tok(p, peek(p), "Unexpected symbol");
                goto fail;
            }
        } else {
            break;
        }
        access = node_new(N_INDEX, t->start);
        node_add(access, n);
        node_add(access, idx); /* NULL: '*' */
        n = access;
    }
    p->depth -= steps;
    return n;
fail:
    p->depth -= steps;
    node_free(n);
    return NULL;
}

static struct expr_node *unary(struct parser *p)
{
    size_t pos = peek(p)->start;
    struct expr_node *n, *operand;

    if (!match(p, T_BANG))
        return postfix(p);
    if (incr_depth(p) < 0)
        return NULL;
    operand = unary(p);
    p->depth--;
    if (!operand)
        return NULL;
    n = node_new(N_NOT, pos);
    node_add(n, operand);
    return n;
}

/* One precedence level of left-to-right binary operators, kept as one flat node. */
static struct expr_node *binary_level(struct parser *p, int equality)
{
    struct expr_node *n = equality ? binary_level(p, 0) : unary(p), *chain = NULL;

    while (n) {
        enum tok_type t = at_end(p) ? T_EOF : peek(p)->type;
        enum expr_op op;
        struct expr_node *right;

        if (equality && (t == T_EQ || t == T_NE))
            op = t == T_EQ ? OP_EQ : OP_NE;
        else if (!equality && (t == T_LT || t == T_LE || t == T_GT || t == T_GE))
            op = t == T_LT ? OP_LT : t == T_LE ? OP_LE : t == T_GT ? OP_GT : OP_GE;
        else
            break;
        p->at++;
        right = equality ? binary_level(p, 0) : unary(p);
        if (!right) {
            node_free(n);
            return NULL;
        }
        if (!chain) {
            chain = node_new(N_COMPARE, n->pos);
            node_add(chain, n);
            n = chain;
        }
        chain->ops = xrealloc(chain->ops, chain->nargs);
        chain->ops[chain->nargs - 1] = (unsigned char)op;
        node_add(chain, right);
    }
    return n;
}

/* '&&' (and_level) or '||' (the level above it): one node holding every operand. */
static struct expr_node *logical(struct parser *p, int is_or)
{
    struct expr_node *n = is_or ? logical(p, 0) : binary_level(p, 1), *all;
    enum tok_type op = is_or ? T_OR : T_AND;

    if (!n || !check(p, op))
        return n;
    if (incr_depth(p) < 0) {
        node_free(n);
        return NULL;
    }
    all = node_new(is_or ? N_OR : N_AND, n->pos);
    node_add(all, n);
    while (match(p, op)) {
        struct expr_node *right = is_or ? logical(p, 0) : binary_level(p, 1);
        if (!right) {
            node_free(all);
            all = NULL;
            break;
        }
        node_add(all, right);
    }
    p->depth--;
    return all;
}

static struct expr_node *expression(struct parser *p)
{
    struct expr_node *n;

    if (incr_depth(p) < 0)
        return NULL;
    n = logical(p, 1);
    p->depth--;
    return n;
}

int pipeline_expr_parse(const char *src, size_t len, const struct pipeline_expr_opts *opts,
                        struct pipeline_expr **out, size_t *err_at, struct sw_err *err)
{
    struct parser p = {src, len, opts, NULL, 0, 0, 0, 0, 0, err, 0};
    struct expr_node *root = NULL;

    *out = NULL;
    if (len > PIPELINE_EXPR_MAX_LENGTH) {
        if (err_at)
            *err_at = PIPELINE_EXPR_MAX_LENGTH;
        return sw_err_set(err, PIPELINE_ESYNTAX, "Exceeded max expression length %d",
                          PIPELINE_EXPR_MAX_LENGTH);
    }
    lex(&p);
    if (!p.failed && !at_end(&p)) {
        root = expression(&p);
        if (root && !at_end(&p))
            fail_tok(&p, peek(&p), "Unexpected symbol");
    }
    free(p.toks);
    if (p.failed) {
        node_free(root);
        if (err_at)
            *err_at = p.err_at;
        return PIPELINE_ESYNTAX;
    }
    *out = xcalloc(1, sizeof(**out));
    (*out)->root = root;
    (*out)->has_status = p.has_status;
    return 0;
}

void pipeline_expr_free(struct pipeline_expr *e)
{
    if (!e)
        return;
    node_free(e->root);
    free(e);
}

int pipeline_expr_has_status(const struct pipeline_expr *e)
{
    return e->has_status;
}
