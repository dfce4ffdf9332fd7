#!/usr/bin/env bash
# Installs every Debian package trlmdb's build, tests, tools and demo need.
set -euo pipefail
packages=(
  build-essential cmake pkg-config clang-format
  liblmdb-dev lmdb-utils python3 python3-lmdb
  libuv1-dev libsodium-dev libxxhash-dev
  libcmocka-dev googletest libgtest-dev
  binutils dpkg-dev
  clang libclang-rt-14-dev
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

deps_dir="$(cd "$(dirname "$0")/.." && pwd)/.deps"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo

# Debian source packages are fetched with apt-get source, which needs deb-src.
enable_deb_src() {
  apt-get source --print-uris lmdb >/dev/null 2>&1 && return 0
  for f in /etc/apt/sources.list.d/debian.sources; do
    [ -f "$f" ] && sed 's/^Types: deb$/Types: deb-src/' "$f" |
      $SUDO tee /etc/apt/sources.list.d/trlmdb-deb-src.sources >/dev/null
  done
  $SUDO apt-get update -qq
}

# Debian's lmdb-utils binaries are linked statically against LMDB, so neither
# LD_PRELOAD nor a library path reaches them. The compatibility tests build the
# same programs from Debian's own source package, dynamically linked, and run
# them against the real liblmdb and the shim (relinked, preloaded, library path).
if [ ! -f "$deps_dir/lmdb-utils-src/mdb_load.c" ]; then
  enable_deb_src
  tmp=$(mktemp -d)
  (cd "$tmp" && apt-get source --download-only -qq lmdb >/dev/null 2>&1)
  mkdir -p "$deps_dir/lmdb-utils-src"
  tar -xzf "$tmp"/lmdb_*.orig.tar.gz -C "$tmp"
  cp "$tmp"/lmdb-*/libraries/liblmdb/mdb_{load,dump,stat,copy}.c "$deps_dir/lmdb-utils-src/"
  rm -rf "$tmp"
fi

# libuv goes into libtrlmdb.so statically and hidden (a host with its own
# libuv, such as Node.js, must not see ours), but Debian's libuv_a.a is not
# position-independent. The build compiles Debian's own libuv source package
# (with Debian's patches applied by apt-get source) as PIC instead.
if [ ! -f "$deps_dir/libuv-src/CMakeLists.txt" ]; then
  enable_deb_src
  tmp=$(mktemp -d)
  (cd "$tmp" && apt-get source -qq libuv1 >/dev/null 2>&1)
  rm -rf "$deps_dir/libuv-src"
  mkdir -p "$deps_dir"
  mv "$tmp"/libuv1-*/ "$deps_dir/libuv-src"
  rm -rf "$tmp"
fi
