/*
 * Error objects and memory helpers. The error object carries one code and one
 * human line; callers add context on the way up with sw_err_prefix, so the line
 * that reaches the terminal names the file, the key and the cause.
 */
#include "base/base.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int sw_errno_code(int e)
{
    switch (e) {
    case ENOENT:
    case ENOTDIR:
        return SW_ENOTFOUND;
    case EEXIST:
    case ENOTEMPTY:
        return SW_EEXIST;
    case ENOSPC:
    case EDQUOT:
    case EFBIG:
        return SW_ENOSPC;
    case EACCES:
    case EPERM:
    case EROFS:
        return SW_EACCES;
    case EINVAL:
    case ENAMETOOLONG:
        return SW_EINVAL;
    default:
        return SW_EIO;
    }
}

int sw_err_set(struct sw_err *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return code;
}

int sw_err_sys(struct sw_err *err, int e, const char *fmt, ...)
{
    int code = sw_errno_code(e);
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
        va_end(ap);
        if (n >= 0 && (size_t)n < sizeof(err->msg))
            snprintf(err->msg + n, sizeof(err->msg) - n, ": %s", strerror(e));
        err->code = code;
    }
    return code;
}

int sw_err_prefix(struct sw_err *err, const char *fmt, ...)
{
    if (!err)
        return SW_EIO;
    struct buf b = BUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    buf_vaddf(&b, fmt, ap);
    va_end(ap);
    buf_adds(&b, ": ");
    buf_adds(&b, err->msg);
    size_t n = b.len < sizeof(err->msg) - 1 ? b.len : sizeof(err->msg) - 1;
    memcpy(err->msg, b.data, n);
    err->msg[n] = '\0';
    buf_free(&b);
    return err->code;
}

static void oom(void)
{
    fputs("slipway: out of memory\n", stderr);
    abort();
}

void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        oom();
    return p;
}

void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        oom();
    return p;
}

void *xcalloc_aligned(size_t n, size_t size, size_t align)
{
    size_t total = (n ? n : 1) * (size ? size : 1);
    if (size && total / size != (n ? n : 1))
        oom();
    total = (total + align - 1) / align * align; /* aligned_alloc wants a multiple */
    void *p = aligned_alloc(align, total);
    if (!p)
        oom();
    memset(p, 0, total);
    return p;
}

void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (!p)
        oom();
    return p;
}

char *xstrdup(const char *s)
{
    char *p = strdup(s);
    if (!p)
        oom();
    return p;
}

char *xstrdup_or_null(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

char *xstrndup(const char *s, size_t n)
{
    char *p = strndup(s, n);
    if (!p)
        oom();
    return p;
}

char *xasprintf(const char *fmt, ...)
{
    struct buf b = BUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    buf_vaddf(&b, fmt, ap);
    va_end(ap);
    return buf_detach(&b, NULL);
}
