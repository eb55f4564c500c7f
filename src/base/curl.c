/* Loading libcurl on first use: see curl.h. */
#include "base/curl.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

struct sw_curl_fns sw_curl;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static char why[256]; /* empty once loaded */

#define LIBCURL "libcurl.so.4"

static void load(void)
{
    static const struct sys_sym syms[] = {
#define FN(f) {"curl_" #f, offsetof(struct sw_curl_fns, f)}
        FN(global_init), FN(easy_init),    FN(easy_setopt),   FN(easy_perform), FN(easy_getinfo),
        FN(easy_reset),  FN(easy_cleanup), FN(easy_strerror), FN(slist_append), FN(slist_free_all),
        FN(share_init),  FN(share_setopt), FN(share_cleanup), FN(url),          FN(url_set),
        FN(url_get),     FN(url_cleanup),  FN(free),          FN(getdate),
#undef FN
    };
    struct sw_curl_fns f;
    if (sys_load_table(LIBCURL, syms, sizeof(syms) / sizeof(*syms), &f, "install libcurl4",
                       "libcurl 7.62 or later is needed", why, sizeof(why)))
        return;
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
