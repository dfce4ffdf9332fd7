#!/usr/bin/env bash
# The shim must export exactly what the real liblmdb.so.0 exports, plus the
# trlmdb_* functions of include/trlmdb.h, and nothing else; the drop-in copy
# must carry the soname liblmdb.so.0. Usage: check_exports.sh REAL SHIM DROPIN HEADER
set -euo pipefail
real=$1 shim=$2 dropin=$3 header=$4
exports() { nm -D --defined-only "$1" | awk '$2 ~ /^[TWBDRVi]$/ {print $3}' | sort -u; }
expected=$( (exports "$real"; grep -oE '\btrlmdb_[a-z_0-9]+\(' "$header" | tr -d '(') | sort -u)
status=0
for lib in "$shim" "$dropin"; do
  if ! diff <(echo "$expected") <(exports "$lib") >/tmp/trlmdb-exports.$$; then
    echo "FAIL: $lib exports differ from the real liblmdb + trlmdb.h (< expected, > actual):"
    cat /tmp/trlmdb-exports.$$
    status=1
  fi
done
rm -f /tmp/trlmdb-exports.$$
n_real=$(exports "$real" | wc -l)
[ "$n_real" -ge 69 ] || { echo "FAIL: real liblmdb exports only $n_real symbols"; status=1; }
soname=$(readelf -d "$dropin" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
[ "$soname" = "liblmdb.so.0" ] || { echo "FAIL: drop-in soname is '$soname'"; status=1; }
# The drop-in must not depend on the library it replaces (it loads the real one by path).
if readelf -d "$dropin" | grep -q 'NEEDED.*liblmdb'; then
  echo "FAIL: drop-in depends on liblmdb"; status=1
fi
[ $status -eq 0 ] && echo "ok: $n_real LMDB symbols + $(echo "$expected" | grep -c '^trlmdb_') trlmdb_* symbols, nothing else"
exit $status
