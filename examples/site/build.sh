#!/bin/sh
# Builds the site: src/ copied into dist/, every page stamped with the
# version (in a <meta name="version"> and its footer) and dist/version.txt
# saying which version and commit this is, so a test, a person or a
# rollback can tell from the outside what a server is serving.
#
#   ./build.sh                      version from git (a tag, else the commit)
#   VERSION=v1.2.0 ./build.sh       as a pipeline calls it
#
# dist/ is replaced whole, never left half-written: the build goes to a
# temporary directory renamed into place at the end.
set -eu
cd "$(dirname "$0")"

VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo unversioned)}
COMMIT=${COMMIT:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}
# Both go into sed replacements and HTML: letters, digits and . _ + - only.
for v in "$VERSION" "$COMMIT"; do
    case $v in
    '' | *[!A-Za-z0-9._+-]*)
        echo "build.sh: '$v' is not a version (letters, digits and . _ + - only)" >&2
        exit 1
        ;;
    esac
done

tmp=$(mktemp -d dist.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
cp -R src/. "$tmp/"
find "$tmp" -name '*.html' | while read -r page; do
    sed -e "s/@VERSION@/$VERSION/g" -e "s/@COMMIT@/$COMMIT/g" "$page" > "$page.new"
    mv "$page.new" "$page"
done
printf 'version=%s\ncommit=%s\n' "$VERSION" "$COMMIT" > "$tmp/version.txt"
chmod -R a+rX "$tmp"

rm -rf dist
mv "$tmp" dist
trap - EXIT
echo "built dist/: version $VERSION, commit $COMMIT, $(find dist -type f | wc -l) files"
