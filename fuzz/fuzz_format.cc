// The on-disk format helpers (shim/format.cc) on bytes a peer or a damaged
// database supplies: extended keys, timestamps and their printed form; and
// the clock-unit conversion of TRLMDB_TEST_CLOCK_SHIFT_MS (shim/clock.cc),
// whose value is whatever strtoll makes of the variable.
#include <cstdint>
#include <cstring>
#include <string>

#include "clock.h"
#include "format.h"
#include "fuzz_util.h"

using namespace trlmdb;
using trlmdb::fuzz::check;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, std::size_t size) {
  std::string_view s(reinterpret_cast<const char *>(data), size);

  std::string_view db, key;
  if (split_xkey(s, &db, &key)) {
    check(db.find('\0') == std::string_view::npos, "database name holds the separator");
    check(make_xkey(db, key) == s, "xkey does not rebuild from its parts");
    is_reserved_name(db);
  } else {
    check(s.find('\0') == std::string_view::npos, "xkey with a separator refused");
  }

  for (std::size_t at = 0; at + kTsSize <= size && at < 64; ++at) {
    std::string_view b = s.substr(at, kTsSize);
    Ts ts;
    bool ok = parse_ts(b, &ts);
    check(ok == (data[at + kTsSize - 1] <= 1), "parse_ts disagrees with the op byte");
    if (!ok) continue;
    unsigned char again[kTsSize];
    encode_ts(ts, again);
    check(std::memcmp(again, b.data(), kTsSize) == 0, "timestamp does not re-encode");
    check(ts.is_put() != ts.is_delete(), "timestamp both put and delete");
    std::string text = format_ts(ts);
    check(!text.empty() && text.size() < 64, "printed timestamp length");
  }
  Ts none;
  check(!parse_ts(s.substr(0, size == kTsSize ? 0 : size), &none) || size == kTsSize,
        "parse_ts accepted a length other than 12");

  if (size >= 8) {
    int64_t ms;
    std::memcpy(&ms, data, 8);
    clock_units_from_ms(ms);
  }
  return 0;
}
