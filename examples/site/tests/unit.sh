#!/bin/sh
# Unit tests of the built site: run after ./build.sh, on dist/ as it will be
# released. Each check is one TAP line; exit 1 when one fails.
#
#   tests/unit.sh [DIST]          (default: dist/ beside this directory)
#
# Checks: the pages and assets are there; no page kept a @PLACEHOLDER@;
# every page has a title and carries the version of dist/version.txt;
# every link and asset a page names inside the site exists in dist/.
set -u
cd "$(dirname "$0")/.." || exit 1
DIST=${1:-dist}
failed=0 n=0
ok() { n=$((n + 1)); echo "ok $n - $*"; }
not_ok() { n=$((n + 1)); echo "not ok $n - $*"; failed=1; }
check() { d=$1; shift; if "$@" >/dev/null 2>&1; then ok "$d"; else not_ok "$d"; fi; }

[ -d "$DIST" ] || { echo "Bail out! no $DIST/: run ./build.sh first"; exit 1; }

for f in index.html about.html visit.html 404.html css/site.css img/logo.svg img/harbour.png version.txt; do
    check "$f is built" test -s "$DIST/$f"
done
version=$(sed -n 's/^version=//p' "$DIST/version.txt")
check "version.txt names a version and a commit" eval '[ -n "$version" ] && grep -q "^commit=." "$DIST/version.txt"'
check "no page kept a placeholder" eval '! grep -rq "@[A-Z]*@" "$DIST"'
check "the PNG is a PNG" eval 'head -c 8 "$DIST/img/harbour.png" | od -An -c | grep -q "P   N   G"'

for page in "$DIST"/*.html; do
    name=${page#"$DIST"/}
    check "$name has a title" grep -q '<title>[^<][^<]*</title>' "$page"
    check "$name carries version $version" grep -q "version <span class=\"version\">$version</span>" "$page"
    # every href= and src= inside the site (not http:, mailto:, #) names a built file
    for link in $(grep -o '\(href\|src\)="[^"]*"' "$page" | sed 's/^[a-z]*="\([^"]*\)"$/\1/' | sort -u); do
        case $link in
        http:* | https:* | mailto:* | '#'*) continue ;;
        /) target=index.html ;;
        /*) target=${link#/} ;;
        *) target=$link ;;
        esac
        check "$name: $link exists" test -f "$DIST/${target%%[?#]*}"
    done
done

echo "1..$n"
exit $failed
