#!/bin/bash
# Puts the seven debs the H200 machine needs for Vulkan (the loader and the GL-dispatch
# libraries NVIDIA's ICD links against: libvulkan1 libegl1 libglvnd0 libopengl0 libgl1
# libglx0 libgles2) into DEST, for a device call's carry folder (install there with
# `dpkg -x DEB /` + ldconfig). Copied from the checkout's .gl/ where present, else
# downloaded from Debian's archive with apt-get download (a package registry).
#   bash benches/gl-debs.sh .dev-sNN-name/gl
set -euo pipefail
repo=$(dirname "$(cd "$(dirname "$0")" && pwd)")
dest=$1
mkdir -p "$dest"
if ls "$repo"/.gl/*.deb > /dev/null 2>&1; then
  cp "$repo"/.gl/*.deb "$dest/"
else
  o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
  mkdir -p /tmp/amd64/partial
  apt-get $o update > /dev/null
  (cd "$dest" && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
fi
