#include "bench_util.h"

#include <stdlib.h>
#include <sys/statfs.h>

#include <cerrno>
#include <cstdio>
#include <fstream>
#include <sstream>

namespace trlmdb::bench {

std::optional<uint64_t> parse_u64(const std::string &text) {
  char *end = nullptr;
  errno = 0;
  unsigned long long x = std::strtoull(text.c_str(), &end, 10);
  // strtoull accepts a leading '-' and negates; a size never has one.
  if (text.empty() || *end != '\0' || errno != 0 || text[0] == '-') return std::nullopt;
  return x;
}

std::vector<std::string> split_list(const std::string &list) {
  std::vector<std::string> out;
  std::stringstream ss(list);
  for (std::string item; std::getline(ss, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

std::string default_tmp_dir() {
  const char *t = std::getenv("TMPDIR");
  return t && *t ? t : "/tmp";
}

std::string fs_type(const std::string &path) {
  struct statfs st {};
  if (statfs(path.c_str(), &st) != 0) return "?";
  switch (static_cast<unsigned long>(st.f_type)) {
    case 0x01021994:
      return "tmpfs";
    case 0xEF53:  // one magic for the three
      return "ext2/3/4";
    case 0x58465342:
      return "xfs";
    case 0x9123683E:
      return "btrfs";
    case 0x794c7630:
      return "overlayfs";
    default: {
      char buf[32];
      std::snprintf(buf, sizeof buf, "0x%lx", static_cast<unsigned long>(st.f_type));
      return buf;
    }
  }
}

std::string loadavg() {
  std::ifstream f("/proc/loadavg");
  std::string a, b, c;
  if (!(f >> a >> b >> c)) return "unknown";
  return a + " " + b + " " + c;
}

}  // namespace trlmdb::bench
