/* Loading libcurl on first use: see curl.h. */
#include "base/curl.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

struct sw_curl_fns sw_curl;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static char why[256]; /* empty once loaded */

#define LIBCURL "libcurl.so.4"

static void load(void)
{
    void *h = dlopen(LIBCURL, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        snprintf(why, sizeof(why), "cannot load %s (%s); install libcurl4", LIBCURL,
                 e ? e : "not found");
        return;
    }
    static const struct {
        const char *name;
        size_t off;
    } fns[] = {
#define FN(f) {"curl_" #f, offsetof(struct sw_curl_fns, f)}
        FN(global_init), FN(easy_init),    FN(easy_setopt),   FN(easy_perform), FN(easy_getinfo),
        FN(easy_reset),  FN(easy_cleanup), FN(easy_strerror), FN(slist_append), FN(slist_free_all),
        FN(share_init),  FN(share_setopt), FN(share_cleanup), FN(url),          FN(url_set),
        FN(url_get),     FN(url_cleanup),  FN(free),          FN(getdate),
#undef FN
    };
    struct sw_curl_fns f;
    for (size_t i = 0; i < sizeof(fns) / sizeof(*fns); i++) {
        void *p = dlsym(h, fns[i].name);
        if (!p) {
            snprintf(why, sizeof(why), "%s has no %s (libcurl 7.62 or later is needed)", LIBCURL,
                     fns[i].name);
            return; /* h stays open: nothing of it is used */
        }
        memcpy((char *)&f + fns[i].off, &p, sizeof(p));
    }
    /* Not thread-safe in every libcurl: here, once, before any request. */
    if (f.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        snprintf(why, sizeof(why), "libcurl's global init failed");
        return;
    }
    sw_curl = f;
}

int sw_curl_load(struct sw_err *err)
{
    pthread_once(&once, load);
    return why[0] ? sw_err_set(err, SW_EIO, "%s", why) : 0;
}
