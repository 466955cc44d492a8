#!/usr/bin/env bash
# Builds the real kube-apiserver and etcd used by the tests and the demo, once, from the Go
# module proxy, into a cache outside the checkout keyed by version. Prints the bin directory.
#
#   KUBE_VERSION  (default 1.34.4)   Kubernetes release; staging modules pinned to v0.<minor>.<patch>
#   ETCD_VERSION  (default 3.6.16)   etcd release (go.etcd.io/etcd/server/v3)
#   REGISTRY_VERSION (default 3.1.2) distribution registry (github.com/distribution/distribution/v3)
#   TIDEGATE_CACHE (default ~/.cache/tidegate)
#
# If KUBEBUILDER_ASSETS points at a directory holding kube-apiserver and etcd, those are used
# and only the registry is built. Every build is skipped when its binary is already cached.
set -euo pipefail

KUBE_VERSION="${KUBE_VERSION:-1.34.4}"
ETCD_VERSION="${ETCD_VERSION:-3.6.16}"
REGISTRY_VERSION="${REGISTRY_VERSION:-3.1.2}"
CACHE="${TIDEGATE_CACHE:-$HOME/.cache/tidegate}"


BIN="$CACHE/bin/k8s-$KUBE_VERSION-etcd-$ETCD_VERSION-registry-$REGISTRY_VERSION"

command -v go >/dev/null || { echo "go is required to build kube-apiserver and etcd (or set KUBEBUILDER_ASSETS)" >&2; exit 1; }
mkdir -p "$BIN"
export GOFLAGS="-mod=mod" CGO_ENABLED=0

# Each binary gets its own wrapper module so their dependency graphs never meet.
build_kube() {
  local dir="$CACHE/src/kube-apiserver-$KUBE_VERSION"
  local minor="${KUBE_VERSION#*.}"          # 34.4
  local staging="v0.$minor"
  mkdir -p "$dir"
  go mod download -json "k8s.io/kubernetes@v$KUBE_VERSION" >"$dir/download.json"
  local gomod
  gomod="$(go env GOMODCACHE)/cache/download/k8s.io/kubernetes/@v/v$KUBE_VERSION.mod"
  {
    echo "module tidegate.local/kube-apiserver"
    echo
    echo "go 1.24.0"
    echo
    echo "require k8s.io/kubernetes v$KUBE_VERSION"
    echo
    echo "replace ("
    grep -E '^\s*k8s\.io/[a-z0-9-]+ => \./staging' "$gomod" | awk -v v="$staging" '{print "\t" $1 " => " $1 " " v}'
    echo ")"
  } >"$dir/go.mod"
  cat >"$dir/tools.go" <<'GO'
//go:build tools

package tools

import _ "k8s.io/kubernetes/cmd/kube-apiserver"
GO
  (cd "$dir" && go mod tidy >&2 && go build -trimpath -ldflags "-s -w \
      -X k8s.io/component-base/version.gitVersion=v$KUBE_VERSION \
      -X k8s.io/component-base/version.gitMajor=1 \
      -X k8s.io/component-base/version.gitMinor=${minor%%.*} \
      -X k8s.io/client-go/pkg/version.gitVersion=v$KUBE_VERSION" \
      -o "$BIN/kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver >&2)
  mv "$BIN/kube-apiserver.tmp" "$BIN/kube-apiserver"
}

# A wrapper module that requires one Go module and builds one of its packages into $BIN/<name>.
build_module() {
  local name="$1" module="$2" version="$3" package="$4"
  local dir="$CACHE/src/$name-$version"
  mkdir -p "$dir"
  printf 'module tidegate.local/%s\n\ngo 1.24.0\n\nrequire %s v%s\n' "$name" "$module" "$version" >"$dir/go.mod"
  printf '//go:build tools\n\npackage tools\n\nimport _ "%s"\n' "$package" >"$dir/tools.go"
  (cd "$dir" && go mod tidy >&2 && go build -trimpath -ldflags "-s -w" -o "$BIN/$name.tmp" "$package" >&2)
  mv "$BIN/$name.tmp" "$BIN/$name"
}

build_etcd() { build_module etcd go.etcd.io/etcd/server/v3 "$ETCD_VERSION" go.etcd.io/etcd/server/v3; }
build_registry() { build_module registry github.com/distribution/distribution/v3 "$REGISTRY_VERSION" github.com/distribution/distribution/v3/cmd/registry; }

[[ -x "$BIN/registry" ]] || { echo "building registry v$REGISTRY_VERSION (once, cached in $BIN)" >&2; build_registry; }
# Prebuilt envtest binaries (KUBEBUILDER_ASSETS) are used instead of building kube-apiserver and etcd.
if [[ -n "${KUBEBUILDER_ASSETS:-}" && -x "$KUBEBUILDER_ASSETS/kube-apiserver" && -x "$KUBEBUILDER_ASSETS/etcd" ]]; then
  echo "$BIN"
  exit 0
fi
[[ -x "$BIN/etcd" ]] || { echo "building etcd v$ETCD_VERSION (once, cached in $BIN)" >&2; build_etcd; }
[[ -x "$BIN/kube-apiserver" ]] || { echo "building kube-apiserver v$KUBE_VERSION (once, cached in $BIN; takes several minutes)" >&2; build_kube; }
echo "$BIN"
