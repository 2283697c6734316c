#!/usr/bin/env bash
# Builds the image for real without a Docker engine or a registry, from Debian's
# packages only:
#   1. a Debian 12 base (bookworm minbase, slim's dpkg excludes) made with
#      mmdebstrap into build-image/ (kept and reused; --rebase makes it again),
#   2. imported into buildah's vfs storage as localhost/backstop-base:bookworm,
#   3. `buildah bud --isolation chroot --storage-driver vfs` of the Dockerfile with
#      BASE_IMAGE pointed at it, VERSION/REVISION/DESCRIBE/CREATED from this checkout,
#   4. the image checked: every binary's `--version` run inside it as user 10001,
#      `ldd` finds every library, the OCI labels printed,
#   5. written out as an OCI archive (build-image/backstop-<version>.oci.tar) and
#      its layout unpacked and checked with umoci.
# Slow (about 13 minutes here at -j1 on two shared cores: 100 s for the base,
# 10 minutes for the build stage), so not part of ./dev test; there,
# tests/image/check.py checks the package lists in seconds.
# Usage: ./dev image [--jobs N] [--base IMAGE] [--rebase] [--tag NAME]
#   --base IMAGE   build FROM this image instead (e.g. the pinned
#                  docker.io/library/debian:bookworm-20250520-slim where a registry is reachable)
#   --jobs N       compile jobs inside the build (default 1)
#   --base-packages  only write tests/image/bookworm-slim-packages.txt from the base
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/scripts/lib.sh"

jobs=1
base=""
rebase=0
only_base_packages=0
tag=localhost/backstop
while (($#)); do
  case "$1" in
    --jobs) jobs=$2; shift 2 ;;
    --base) base=$2; shift 2 ;;
    --rebase) rebase=1; shift ;;
    --tag) tag=$2; shift 2 ;;
    --base-packages) only_base_packages=1; shift ;;
    *) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
  esac
done

start=$(date +%s)
phase() { log "[$(($(date +%s) - start)) s] $*"; }

ensure_packages mmdebstrap buildah umoci
# vfs: no overlay mounts needed; chroot isolation: no user namespaces or runc.
B=(as_root buildah --storage-driver vfs)
out="$ROOT/build-image"
mkdir -p "$out"

base_tar="$out/bookworm-minbase.tar"
if [[ -z "$base" || $only_base_packages == 1 ]]; then
  if [[ $rebase == 1 || ! -s "$base_tar" ]]; then
    phase "making a bookworm minbase with mmdebstrap"
    # minbase = Essential + Priority required + apt, as Debian's own images; the
    # path excludes are slim's (no docs but copyrights, no man pages, no locales).
    as_root mmdebstrap --variant=minbase --format=tar \
      --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
      --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
      --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/locale/locale.alias' \
      bookworm "$base_tar.tmp" \
      "deb http://deb.debian.org/debian bookworm main" \
      "deb http://deb.debian.org/debian bookworm-updates main" \
      "deb http://deb.debian.org/debian-security bookworm-security main"
    mv "$base_tar.tmp" "$base_tar"
  fi
  if [[ $only_base_packages == 1 ]]; then
    list="$ROOT/tests/image/bookworm-slim-packages.txt"
    tar -xOf "$base_tar" ./var/lib/dpkg/status | python3 -c '
import sys
pk = {}
for block in sys.stdin.read().split("\n\n"):
    d, key = {}, None
    for line in block.splitlines():
        if line.startswith(" ") and key:
            continue
        key, _, value = line.partition(":")
        d[key] = value.strip()
    if "Package" in d:
        pk[d["Package"]] = d
# mmdebstrap takes usrmerge for "usrmerge | usr-is-merged" (and with it perl);
# Debian'"'"'s images have usr-is-merged: leave usrmerge and what only it pulls out.
pk.pop("usrmerge", None)
pk["usr-is-merged"] = {"Package": "usr-is-merged"}
roots = [n for n, d in pk.items() if d.get("Essential") == "yes" or d.get("Priority") == "required" or n == "apt"]
seen, todo = set(), roots
while todo:
    n = todo.pop()
    if n in seen:
        continue
    seen.add(n)
    for field in ("Depends", "Pre-Depends"):
        for group in pk[n].get(field, "").split(","):
            for alt in group.split("|"):
                name = alt.strip().split(" ")[0].split(":")[0]
                if name in pk:
                    todo.append(name)
                    break
print("\n".join(sorted(seen)))
' >"$list.body"
    {
      echo "# The packages of Debian's bookworm-slim base image (minbase: Essential, Priority required and apt,"
      echo "# with their dependencies), read off a bookworm minbase made with mmdebstrap on $(date -u +%F)"
      echo "# (usr-is-merged taken for usrmerge | usr-is-merged, as the official images do, so no perl)."
      echo "# Regenerate: scripts/image.sh --base-packages"
      cat "$list.body"
    } >"$list"
    rm -f "$list.body"
    phase "wrote $list ($(grep -vc '^#' "$list") packages)"
    exit 0
  fi
  phase "importing the base into buildah (vfs storage)"
  ctr=$("${B[@]}" from scratch)
  "${B[@]}" add "$ctr" "$base_tar" / >/dev/null
  "${B[@]}" config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --cmd /bin/bash "$ctr"
  "${B[@]}" commit --rm -q "$ctr" localhost/backstop-base:bookworm >/dev/null
  base=localhost/backstop-base:bookworm
fi

version=$(sed -nE 's/^project\(backstop VERSION ([0-9.]+).*/\1/p' "$ROOT/CMakeLists.txt")
revision=$(git -C "$ROOT" rev-parse HEAD 2>/dev/null || true)
describe=$(git -C "$ROOT" describe --tags --always --dirty --abbrev=12 2>/dev/null || true)
source_url=$(git -C "$ROOT" config --get remote.origin.url 2>/dev/null || true)
image="$tag:$version"
phase "buildah bud --isolation chroot (FROM $base, $jobs compile job(s)): $image"
"${B[@]}" bud --isolation chroot --layers=false -f "$ROOT/Dockerfile" \
  --build-arg BASE_IMAGE="$base" --build-arg BUILD_JOBS="$jobs" \
  --build-arg VERSION="$version" --build-arg REVISION="$revision" --build-arg DESCRIBE="$describe" \
  --build-arg SOURCE="$source_url" --build-arg CREATED="$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
  -t "$image" "$ROOT"

phase "checking the image"
ctr=$("${B[@]}" from "$image")
trap '"${B[@]}" rm "$ctr" >/dev/null 2>&1 || true' EXIT
status=0
for bin in migrate backfill stop-monitor trailing-stop reconcile outbox-drain controller exchange-sim; do
  if line=$("${B[@]}" run --isolation chroot --user 10001:10001 "$ctr" -- "$bin" --version 2>&1); then
    echo "  $line"
  else
    echo "  FAIL $bin --version: $line"; status=1
  fi
done
missing=$("${B[@]}" run --isolation chroot "$ctr" -- sh -c 'ldd /usr/local/bin/* | grep "not found" || true')
if [[ -n "$missing" ]]; then
  echo "  FAIL libraries not found in the image:"; echo "$missing"; status=1
else
  echo "  ldd: every library of /usr/local/bin/* found"
fi
"${B[@]}" inspect --format '{{range $k, $v := .ImageAnnotations}}{{$k}}={{$v}}{{"\n"}}{{end}}{{range $k, $v := .OCIv1.Config.Labels}}  {{$k}}={{$v}}{{"\n"}}{{end}}' "$image"
"${B[@]}" inspect --format '  user={{.OCIv1.Config.User}} cmd={{.OCIv1.Config.Cmd}}{{"\n"}}' "$image"

archive="$out/backstop-$version.oci.tar"
phase "writing $archive"
rm -f "$archive"
"${B[@]}" push -q "$image" "oci-archive:$archive:$version"
layout=$(mktemp -d)
tar -xf "$archive" -C "$layout"
umoci stat --image "$layout:$version" >/dev/null && echo "  umoci: the OCI layout reads back ($(du -h "$archive" | cut -f1))"
rm -rf "$layout"
phase "done: $image ($([[ $status == 0 ]] && echo checked || echo CHECKS FAILED))"
exit "$status"
