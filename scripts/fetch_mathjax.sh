#!/usr/bin/env bash
# Bring MathJax 3 for the offline site: `npm pack` the pinned package from the npm
# registry, check its checksum, unpack es5/ (loader, TeX extensions, woff fonts) and the
# LICENSE into DEST (default _build/mathjax). book/_ext/mathjax_offline.py copies it
# into the built site's _static/ and points mathjax_path at it.
#
# Usage: bash scripts/fetch_mathjax.sh [DEST]     (idempotent: does nothing if present)
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=3.2.2
SHA256=1b9c0a1c44df864e915690558e72adb9cc5203360daefd385084ced3b6c64c09
DEST=${1:-_build/mathjax}
STAMP="$DEST/.version"

if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$VERSION" && -f "$DEST/es5/tex-mml-chtml.js" ]]; then
    exit 0
fi
command -v npm >/dev/null || { echo "fetch_mathjax: npm is required (apt-get install npm)" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# --ignore-scripts: a tarball is all we want; nothing of the package runs.
npm pack "mathjax@$VERSION" --pack-destination "$work" --ignore-scripts --silent >/dev/null
tarball="$work/mathjax-$VERSION.tgz"
echo "$SHA256  $tarball" | sha256sum --check --quiet -
tar -xzf "$tarball" -C "$work" package/es5 package/LICENSE
rm -rf "$DEST"
mkdir -p "$DEST"
mv "$work/package/es5" "$work/package/LICENSE" "$DEST/"
echo "$VERSION" > "$STAMP"
echo "fetch_mathjax: MathJax $VERSION in $DEST"
