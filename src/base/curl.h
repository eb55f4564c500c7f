/*
 * libcurl, loaded when first needed (dlopen) instead of linked: the 25
 * libraries it brings cost every command 9 ms of its start (20 ms under
 * AddressSanitizer), and most commands never make a request. Include this
 * instead of <curl/curl.h>: after sw_curl_load has returned 0, the curl_*
 * names below call into the loaded library. base's second header, for the
 * three files that speak HTTP (src/store/s3.c, src/monitor/notify.c and
 * config.c).
 */
#ifndef SW_BASE_CURL_H
#define SW_BASE_CURL_H

/* The type-checking wrappers are macros named like the functions. */
#define CURL_DISABLE_TYPECHECK 1
#include <curl/curl.h>

#include "base/base.h"

struct sw_curl_fns {
    __typeof__(curl_global_init) *global_init;
    __typeof__(curl_easy_init) *easy_init;
    __typeof__(curl_easy_setopt) *easy_setopt;
    __typeof__(curl_easy_perform) *easy_perform;
    __typeof__(curl_easy_getinfo) *easy_getinfo;
    __typeof__(curl_easy_reset) *easy_reset;
    __typeof__(curl_easy_cleanup) *easy_cleanup;
    __typeof__(curl_easy_strerror) *easy_strerror;
    __typeof__(curl_slist_append) *slist_append;
    __typeof__(curl_slist_free_all) *slist_free_all;
    __typeof__(curl_share_init) *share_init;
    __typeof__(curl_share_setopt) *share_setopt;
    __typeof__(curl_share_cleanup) *share_cleanup;
    __typeof__(curl_url) *url;
    __typeof__(curl_url_set) *url_set;
    __typeof__(curl_url_get) *url_get;
    __typeof__(curl_url_cleanup) *url_cleanup;
    __typeof__(curl_free) *free;
    __typeof__(curl_getdate) *getdate;
};
extern struct sw_curl_fns sw_curl;

/* Loads libcurl.so.4 and runs its global init, once for the process
 * (thread-safe): 0, or SW_EIO saying what is missing, every call after. */
int sw_curl_load(struct sw_err *err);

/* curl.h wraps these three in macros that check their argument count. */
#undef curl_easy_setopt
#undef curl_easy_getinfo
#undef curl_share_setopt
#define curl_global_init sw_curl.global_init
#define curl_easy_init sw_curl.easy_init
#define curl_easy_setopt sw_curl.easy_setopt
#define curl_easy_perform sw_curl.easy_perform
#define curl_easy_getinfo sw_curl.easy_getinfo
#define curl_easy_reset sw_curl.easy_reset
#define curl_easy_cleanup sw_curl.easy_cleanup
#define curl_easy_strerror sw_curl.easy_strerror
#define curl_slist_append sw_curl.slist_append
#define curl_slist_free_all sw_curl.slist_free_all
#define curl_share_init sw_curl.share_init
#define curl_share_setopt sw_curl.share_setopt
#define curl_share_cleanup sw_curl.share_cleanup
#define curl_url sw_curl.url
#define curl_url_set sw_curl.url_set
#define curl_url_get sw_curl.url_get
#define curl_url_cleanup sw_curl.url_cleanup
#define curl_free sw_curl.free
#define curl_getdate sw_curl.getdate

#endif
