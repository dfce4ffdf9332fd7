// Helpers shared by the benchmark programs (trlmdb-bench and
// trlmdb-repl-bench): reading their options and describing the machine a run
// was made on, so that both report it the same way.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace trlmdb::bench {

// A whole non-negative decimal number; nullopt for anything else (a sign,
// trailing text, overflow), so that a typo in a size is not read as 0.
std::optional<uint64_t> parse_u64(const std::string &text);

// The non-empty items of a comma-separated list.
std::vector<std::string> split_list(const std::string &list);

// $TMPDIR, else /tmp: where a run puts its temporary directories by default.
std::string default_tmp_dir();

// The file system `path` is on ("tmpfs", "ext2/3/4", ... or its magic in
// hex; "?" if it cannot be told): a tmpfs makes durable commits free.
std::string fs_type(const std::string &path);

// The 1, 5 and 15 minute load averages, "unknown" if they cannot be read: a
// busy machine makes wall-clock figures noisy.
std::string loadavg();

}  // namespace trlmdb::bench
