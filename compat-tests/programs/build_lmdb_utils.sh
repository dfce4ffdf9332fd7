#!/usr/bin/env bash
# build_lmdb_utils.sh OUTDIR CC LMDB_INCLUDE_DIR LMDB_LIBRARY
#
# Debian's lmdb-utils binaries (/usr/bin/mdb_dump, mdb_load, mdb_stat,
# mdb_copy) are linked STATICALLY against LMDB (upstream's Makefile links
# them with liblmdb.a; `nm -D /usr/bin/mdb_dump` shows no mdb_* symbol), so
# neither LD_PRELOAD nor LD_LIBRARY_PATH can put the shim under them. This
# script builds the very same programs from Debian's own source package of
# the installed liblmdb0 (fetched with `apt-get source --download-only`,
# checked by apt against the signed archive), unmodified, but linked against
# the shared liblmdb.so.0, into OUTDIR/bin. The tests then check in the
# `real` mode that these builds print exactly what /usr/bin's do.
#
# Offline: set TRLMDB_LMDB_ORIG_TARBALL to a copy of lmdb_<ver>.orig.tar.gz.
# Idempotent: does nothing when OUTDIR/bin already holds the four programs.
set -euo pipefail
out=$1 cc=$2 incdir=$3 lib=$4
tools=(mdb_dump mdb_load mdb_stat mdb_copy)

have_all=1
for t in "${tools[@]}"; do [ -x "$out/bin/$t" ] || have_all=0; done
if ((have_all)); then
  echo "lmdb-utils already built in $out/bin"
  exit 0
fi

mkdir -p "$out/src" "$out/bin"
srcver=$(dpkg-query -W -f '${source:Version}' liblmdb0)   # e.g. 0.9.24-1
upver=${srcver%-*}                                          # e.g. 0.9.24
upver=${upver#*:}
tarball=${TRLMDB_LMDB_ORIG_TARBALL:-}
if [ -z "$tarball" ]; then
  tarball="$out/src/lmdb_${upver}.orig.tar.gz"
  if [ ! -s "$tarball" ]; then
    # A private apt configuration: a deb-src line for the system's suite,
    # lists and cache under OUTDIR; the system's apt state is not touched.
    apt_dir="$out/apt"
    mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial"
    suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
    echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $suite main" \
      > "$apt_dir/sources.list"
    opts=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o "Dir::Etc::SourceParts=$apt_dir/none"
          -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache"
          -o "APT::Sandbox::User=root" -qq)
    echo "fetching Debian source package lmdb=$srcver"
    apt-get "${opts[@]}" update
    (cd "$out/src" && apt-get "${opts[@]}" source --download-only "lmdb=$srcver")
  fi
fi
[ -s "$tarball" ] || { echo "no source tarball $tarball" >&2; exit 1; }

# Only the four programs' sources: their #include "lmdb.h" then resolves to
# the system's lmdb.h (-I), the header of the library they are linked with.
rm -rf "$out/src/tools"
mkdir -p "$out/src/tools"
members=()
for t in "${tools[@]}"; do members+=("lmdb-${upver}/libraries/liblmdb/$t.c"); done
tar -xzf "$tarball" -C "$out/src/tools" --strip-components=3 "${members[@]}"

for t in "${tools[@]}"; do
  # The flags of upstream's Makefile (THREADS, OPT) plus Debian's hardening.
  "$cc" -pthread -O2 -g -fstack-protector-strong -Wformat -Werror=format-security -w \
    -I"$incdir" -o "$out/bin/$t.tmp" "$out/src/tools/$t.c" "$lib"
  mv "$out/bin/$t.tmp" "$out/bin/$t"
done
for t in "${tools[@]}"; do
  if ! readelf -d "$out/bin/$t" | grep -q 'NEEDED.*liblmdb\.so\.0'; then
    echo "$out/bin/$t is not linked against liblmdb.so.0" >&2
    exit 1
  fi
done
echo "built ${tools[*]} from lmdb $srcver into $out/bin"
