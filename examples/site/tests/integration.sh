#!/bin/sh
# Integration tests of a running site: real HTTP requests to URL, as a
# visitor's browser would send them. Each check is one TAP line; exit 1 when
# one fails.
#
#   tests/integration.sh URL [VERSION]
#   tests/integration.sh http://127.0.0.1:8081 v1.2.0
#
# Checks: the pages people arrive at answer 200 with a title; with VERSION,
# the site says it is that version (version.txt and every page's footer);
# every page reachable from / is crawled and every link and asset it names
# answers 200, absolute ones included: a page that loads something from
# another address (a production URL written into a page) must find it
# there; an unknown path answers 404 with the site's own page.
#
# One curl fetches a whole list of URLs over one connection (fetch, below),
# so the tests take a handful of processes however many pages there are.
set -u
[ $# -ge 1 ] || { echo "usage: tests/integration.sh URL [VERSION]" >&2; exit 2; }
BASE=${1%/}
VERSION=${2:-}
failed=0 n=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ok() { n=$((n + 1)); echo "ok $n - $*"; }
not_ok() { n=$((n + 1)); echo "not ok $n - $*"; failed=1; }

# fetch URL...: GETs each URL (5 s each at most); their statuses, in order,
# in $codes ("000": no answer), and the Nth URL's body in $tmp/body.N.
fetch() {
    rm -f "$tmp"/body.*
    : > "$tmp/curlrc"
    j=0
    for u in "$@"; do
        j=$((j + 1))
        case $u in *'"'* | *\\*) u=invalid: ;; esac # never a curl config injection
        printf 'url = "%s"\noutput = "%s/body.%d"\n' "$u" "$tmp" $j >> "$tmp/curlrc"
    done
    codes=$(curl -s --max-time 5 -K "$tmp/curlrc" -w '%{http_code} ' 2>/dev/null)
}
# status N: the status of the Nth URL of the last fetch, in $s
status() {
    s=000
    k=0
    for c in $codes; do
        k=$((k + 1))
        [ $k = "$1" ] && s=$c
    done
}

# ---- the pages people arrive at, and the version --------------------------------------------
fetch "$BASE/" "$BASE/about.html" "$BASE/visit.html" "$BASE/version.txt" "$BASE/no-such-page-$$"
i=0
for path in / /about.html /visit.html; do
    i=$((i + 1))
    status $i
    if [ "$s" = 200 ] && grep -q '<title>' "$tmp/body.$i"; then
        ok "$path answers 200 with a title"
    else
        not_ok "$path answers 200 with a title (got $s)"
    fi
done
status 4
if [ -n "$VERSION" ]; then
    if [ "$s" = 200 ] && grep -qx "version=$VERSION" "$tmp/body.4"; then
        ok "version.txt says $VERSION"
    else
        not_ok "version.txt says $VERSION (got $s: $(head -c 200 "$tmp/body.4" 2>/dev/null | tr '\n' ' '))"
    fi
fi
status 5
if [ "$s" = 404 ] && grep -q 'Lost at sea' "$tmp/body.5"; then
    ok "an unknown path answers 404 with the site's own page"
else
    not_ok "an unknown path answers 404 with the site's own page (got $s)"
fi

# ---- the crawl: a level of pages at a time, then their assets ---------------------------------
# seen: every URL fetched (a space-separated list); broken: what failed.
seen=" / " pages="/" broken=""
while [ -n "$pages" ]; do
    set --
    for p in $pages; do set -- "$@" "$BASE$p"; done
    fetch "$@"
    next="" assets="" i=0
    for p in $pages; do
        i=$((i + 1))
        status $i
        if [ "$s" != 200 ]; then
            broken="$broken $p: $s;"
            continue
        fi
        if [ -n "$VERSION" ] && ! grep -q "version <span class=\"version\">$VERSION</span>" "$tmp/body.$i"; then
            broken="$broken $p: does not say version $VERSION;"
        fi
        # each href= and src= of the page: pages to crawl next, everything
        # else (assets, absolute URLs) to check once
        for link in $(grep -o '\(href\|src\)="[^"]*"' "$tmp/body.$i" | sed 's/^[a-z]*="\(.*\)"$/\1/'); do
            case $link in
            mailto:* | '#'*) continue ;;
            http:* | https:*) ;;
            /*) link=${link%%[?#]*} ;;
            *) link=/${link%%[?#]*} ;;
            esac
            case $seen in *" $link "*) continue ;; esac
            seen="$seen$link "
            case $link in
            /*.html | */) next="$next $link" ;;
            *) assets="$assets $link" ;;
            esac
        done
    done
    if [ -n "$assets" ]; then
        set --
        for a in $assets; do case $a in /*) set -- "$@" "$BASE$a" ;; *) set -- "$@" "$a" ;; esac; done
        fetch "$@"
        i=0
        for a in $assets; do
            i=$((i + 1))
            status $i
            [ "$s" = 200 ] || broken="$broken $a: $s;"
        done
    fi
    pages=$next
done
if [ -n "$broken" ]; then
    not_ok "every page, link and asset reachable from / answers 200:$broken"
else
    set -- $seen
    ok "every page, link and asset reachable from / answers 200 ($# URLs)"
fi

echo "1..$n"
exit $failed
