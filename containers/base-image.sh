#!/usr/bin/env bash
# Builds the base image Corral's image starts from, locally: a minimal
# Debian 12 root file system from the Debian mirror this machine's apt
# already uses (debootstrap --variant=minbase), imported as
# corral-base/debian:bookworm. Nothing is pulled from an image registry.
#
#   containers/base-image.sh [TAG]      (root; needs debootstrap and a Docker engine)
#
# Skips the work when the image exists (set CORRAL_REBUILD_BASE=1 to redo it).
set -euo pipefail
tag=${1:-corral-base/debian:bookworm}
docker=${DOCKER:-docker}
if [ -z "${CORRAL_REBUILD_BASE:-}" ] && "$docker" image inspect "$tag" >/dev/null 2>&1; then
  echo "base-image: $tag exists"
  exit 0
fi
mirror=${DEBIAN_MIRROR:-}
if [ -z "$mirror" ]; then
  # The mirror apt uses here: deb822 sources first, then one-line sources.
  mirror=$(grep -h '^URIs:' /etc/apt/sources.list.d/debian.sources 2>/dev/null | awk '{print $2}' | grep -v security | head -1 || true)
  [ -n "$mirror" ] || mirror=$(grep -hE '^deb ' /etc/apt/sources.list 2>/dev/null | awk '{print $2}' | grep -v security | head -1 || true)
  [ -n "$mirror" ] || mirror=http://deb.debian.org/debian
fi
root=$(mktemp -d /tmp/corral-rootfs.XXXXXX)
trap 'rm -rf "$root"' EXIT
echo "base-image: debootstrap bookworm from $mirror"
start=$(date +%s)
debootstrap --variant=minbase bookworm "$root" "$mirror" >"$root.log" 2>&1 || {
  tail -20 "$root.log" >&2
  echo "base-image: debootstrap failed (log above)" >&2
  exit 1
}
rm -f "$root.log"
# What an image does not need: package lists (apt-get update fetches them),
# caches, documentation, logs.
rm -rf "$root"/var/cache/apt/*.bin "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/* \
       "$root"/usr/share/man/* "$root"/usr/share/locale/* "$root"/var/log/*
tar --numeric-owner -C "$root" -c . | "$docker" import \
  -c 'ENV LANG=C.UTF-8' -c 'CMD ["/bin/bash"]' - "$tag" >/dev/null
echo "base-image: $tag built in $(( $(date +%s) - start )) s"
