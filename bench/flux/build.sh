#!/usr/bin/env bash
# Builds Flux's source-controller and kustomize-controller once, from the Go module proxy, into a
# cache outside the checkout keyed by version, and copies their CRDs next to them. Prints the bin
# directory on stdout; everything else goes to stderr.
#
#   FLUX_VERSION   (default 1.9.6)  release of both controllers
#   FLUX_ARTIFACT_VERSION (default 0.18.0) github.com/fluxcd/pkg/artifact pin; the version the
#                  controllers ask for is not served by the proxy
#   TIDEGATE_CACHE (default ~/.cache/tidegate)
#
# Each controller gets its own wrapper module (like scripts/build-test-binaries.sh). A wrapper is
# the main module, so the replace directives of the controller's own go.mod (which Go ignores in a
# dependency) are copied into it; a local `=> ./api` replace becomes the published api module at
# the same version.
set -euo pipefail

FLUX_VERSION="${FLUX_VERSION:-1.9.6}"
FLUX_ARTIFACT_VERSION="${FLUX_ARTIFACT_VERSION:-0.18.0}"
CACHE="${TIDEGATE_CACHE:-$HOME/.cache/tidegate}"
BIN="$CACHE/bin/flux-$FLUX_VERSION"

command -v go >/dev/null || { echo "go is required to build the Flux controllers" >&2; exit 1; }
mkdir -p "$BIN"
export GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0

# Prints the replace directives of a go.mod, one `old [ver] => new [ver]` per line.
replaces() {
  awk '
    /^replace[ \t]*\($/ { block = 1; next }
    block && /^\)/ { block = 0; next }
    block { sub(/\/\/.*/, ""); if ($0 ~ /=>/) print; next }
    /^replace[ \t]/ { sub(/^replace[ \t]+/, ""); sub(/\/\/.*/, ""); print }
  ' "$1" | sed -E 's/^[ \t]+//; s/[ \t]+$//'
}

build_controller() {
  local name="$1" module="$2"
  local dir="$CACHE/src/flux-$name-$FLUX_VERSION"
  mkdir -p "$dir"
  local info gomod srcdir
  info="$(go mod download -json "$module@v$FLUX_VERSION")"
  gomod="$(sed -nE 's/^\t"GoMod": "(.*)",?$/\1/p' <<<"$info")"
  srcdir="$(sed -nE 's/^\t"Dir": "(.*)",?$/\1/p' <<<"$info")"
  [[ -f "$gomod" && -d "$srcdir" ]] || { echo "go mod download $module@v$FLUX_VERSION failed: $info" >&2; exit 1; }
  {
    echo "module tidegate.local/flux-$name"
    echo
    echo "go $(sed -nE 's/^go ([0-9.]+)$/\1/p' "$gomod" | head -1)"
    echo
    echo "require $module v$FLUX_VERSION"
    echo
    echo "replace ("
    replaces "$gomod" | while read -r line; do
      local old="${line%%=>*}" new="${line#*=>}"
      old="$(echo $old)" new="$(echo $new)"
      if [[ "$new" == ./* ]]; then
        # A submodule of the controller's repository: use the published module of the same release.
        echo "	$old => ${old%% *} v$FLUX_VERSION"
      else
        echo "	$old => $new"
      fi
    done
    echo "	github.com/fluxcd/pkg/artifact => github.com/fluxcd/pkg/artifact v$FLUX_ARTIFACT_VERSION"
    echo ")"
  } >"$dir/go.mod"
  printf '//go:build tools\n\npackage tools\n\nimport _ "%s"\n' "$module" >"$dir/tools.go"
  echo "wrapper module $dir/go.mod:" >&2
  cat "$dir/go.mod" >&2
  # -e: tidy also walks the controllers' own tests, whose test-server modules the proxy does not
  # serve (fluxcd/pkg/helmtestserver); nothing the binary is built from needs them.
  (cd "$dir" && go mod tidy -e >&2 && go build -trimpath -ldflags "-s -w" -o "$BIN/$name.tmp" "$module" >&2)
  mv "$BIN/$name.tmp" "$BIN/$name"
}

copy_crds() {
  local module="$1" srcdir
  srcdir="$(go mod download -json "$module@v$FLUX_VERSION" | sed -nE 's/^\t"Dir": "(.*)",?$/\1/p')"
  mkdir -p "$BIN/crds"
  for f in "$srcdir"/config/crd/bases/*.yaml; do
    install -m 0644 "$f" "$BIN/crds/$(basename "$f")"
  done
}

start=$SECONDS
[[ -x "$BIN/source-controller" ]] || {
  echo "building source-controller v$FLUX_VERSION (once, cached in $BIN; takes several minutes)" >&2
  build_controller source-controller github.com/fluxcd/source-controller
}
[[ -x "$BIN/kustomize-controller" ]] || {
  echo "building kustomize-controller v$FLUX_VERSION (once, cached in $BIN; takes several minutes)" >&2
  build_controller kustomize-controller github.com/fluxcd/kustomize-controller
}
[[ -f "$BIN/crds/source.toolkit.fluxcd.io_gitrepositories.yaml" && -f "$BIN/crds/kustomize.toolkit.fluxcd.io_kustomizations.yaml" ]] || {
  copy_crds github.com/fluxcd/source-controller
  copy_crds github.com/fluxcd/kustomize-controller
}
(( SECONDS - start > 1 )) && echo "flux controllers ready in $((SECONDS - start))s" >&2
echo "$BIN"
