#!/usr/bin/env bash
# Builds helm-render into $1 offline from Debian's Go packages
# (golang-go, golang-github-masterminds-sprig-dev, golang-gopkg-yaml.v2-dev,
# golang-gopkg-yaml.v3-dev, golang-github-xeipuuv-gojsonschema-dev),
# in GOPATH mode: a GOPATH under $1 links /usr/share/gocode/src, plus the
# major-version import paths (sprig/v3, semver/v3) that GOPATH mode cannot
# find by itself.
set -euo pipefail
out=$1
src=/usr/share/gocode/src
gopath="$out/gopath"
rm -rf "$gopath"
mkdir -p "$gopath/src"
for d in "$src"/*; do ln -s "$d" "$gopath/src/$(basename "$d")"; done
# github.com needs real directories to hold the /v3 links.
rm "$gopath/src/github.com"
mkdir -p "$gopath/src/github.com"
for owner in "$src"/github.com/*; do
  mkdir -p "$gopath/src/github.com/$(basename "$owner")"
  for repo in "$owner"/*; do ln -s "$repo" "$gopath/src/github.com/$(basename "$owner")/$(basename "$repo")"; done
done
rm "$gopath/src/github.com/Masterminds/sprig" "$gopath/src/github.com/Masterminds/semver"
mkdir -p "$gopath/src/github.com/Masterminds/sprig" "$gopath/src/github.com/Masterminds/semver"
ln -s "$src/github.com/Masterminds/sprig" "$gopath/src/github.com/Masterminds/sprig/v3"
ln -s "$src/github.com/Masterminds/semver" "$gopath/src/github.com/Masterminds/semver/v3"
mkdir -p "$gopath/src/backstop.dev/helm-render"
cp "$(dirname "$0")/main.go" "$gopath/src/backstop.dev/helm-render/"
cd "$gopath/src/backstop.dev/helm-render"
GO111MODULE=off GOPATH="$gopath" GOCACHE="$out/gocache" GOFLAGS= go build -o "$out/helm-render" .
