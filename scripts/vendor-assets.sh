#!/usr/bin/env bash
# Vendor the browser assets we serve ourselves (no CDN: /docs works offline) from npm, at
# pinned versions, into the package. Run by hand when a version below changes; the files
# are committed, so users and CI never need npm.
#
#   bash scripts/vendor-assets.sh
set -Eeuo pipefail
SWAGGER_UI_VERSION=5.35.0
UPLOT_VERSION=1.6.32

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEST=$ROOT/eventtrigger/roles/api/static/swagger-ui
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

(cd "$work" && npm pack --silent "swagger-ui-dist@$SWAGGER_UI_VERSION" >/dev/null)
tar -xzf "$work"/swagger-ui-dist-*.tgz -C "$work"
mkdir -p "$DEST"
for f in swagger-ui-bundle.js swagger-ui.css LICENSE; do
    cp "$work/package/$f" "$DEST/$f"
done
echo "$SWAGGER_UI_VERSION" >"$DEST/VERSION"
# The bundle ends with a sourceMappingURL to a map we do not ship; drop it so browsers
# do not ask for a file that 404s.
sed -i '/^\/\/# sourceMappingURL=/d' "$DEST/swagger-ui-bundle.js"
sed -i 's|/\*# sourceMappingURL=[^*]*\*/||' "$DEST/swagger-ui.css"
echo "vendored swagger-ui-dist $SWAGGER_UI_VERSION into ${DEST#"$ROOT"/}"

# uPlot draws the console's charts (/dashboard): its ES module build, imported as is.
UPLOT=$ROOT/eventtrigger/roles/api/static/console/vendor/uplot
(cd "$work" && npm pack --silent "uplot@$UPLOT_VERSION" >/dev/null)
mkdir -p "$work/uplot"
tar -xzf "$work"/uplot-*.tgz -C "$work/uplot"
mkdir -p "$UPLOT"
cp "$work/uplot/package/dist/uPlot.esm.js" "$work/uplot/package/dist/uPlot.min.css" \
    "$work/uplot/package/LICENSE" "$UPLOT/"
echo "$UPLOT_VERSION" >"$UPLOT/VERSION"
echo "vendored uplot $UPLOT_VERSION into ${UPLOT#"$ROOT"/}"
