// Replication settings of one environment (DESIGN.md section 4). Read at
// mdb_env_open; first match wins per key: TRLMDB_* environment variables,
// then the file named by TRLMDB_CONFIG, then trlmdb.conf beside data.mdb
// (with MDB_NOSUBDIR: "<data file path>.trlmdb.conf"). The merge is per key:
// a later source still supplies what an earlier one leaves unset. An empty
// TRLMDB_* variable counts as unset, except an empty secret (an error).
// Files: `name = value` lines, whole-line `#` comments; keys are the lower-case
// names below plus the original replicator's `port = N` (0.0.0.0:N unless
// `listen` is given) and `connect` (= peers); peers/connect/accept may repeat
// and add up; secret_file is relative to the file's directory.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace trlmdb::repl {

enum class LogLevel { kError = 0, kWarn = 1, kInfo = 2, kDebug = 3 };

struct HostPort {
  std::string host;  // numeric address or name; "" never
  uint16_t port = 0;
  std::string str() const;  // "host:port" ([v6]:port for IPv6)
  bool operator==(const HostPort &) const = default;
};

struct Config {
  // False: no replication settings at all (bookkeeping only, no replicator).
  bool configured = false;
  std::optional<HostPort> listen;  // TRLMDB_LISTEN / listen / port (0.0.0.0:port)
  std::vector<HostPort> peers;     // TRLMDB_PEERS / peers / connect
  std::string secret;              // TRLMDB_SECRET or contents of TRLMDB_SECRET_FILE / secret_file
  bool has_secret = false;
  std::string
      name;  // TRLMDB_NAME / name: the environment's name on the wire ("" = last path component)
  std::string node;  // TRLMDB_NODE / node: this node's label in logs and status (not the node word)
  std::string cluster = "trlmdb";  // TRLMDB_CLUSTER / cluster: cluster identity in the handshake
  std::vector<std::string>
      accept;  // TRLMDB_ACCEPT / accept: hosts allowed to connect (empty = any)
  uint32_t timeout_ms =
      10000;  // TRLMDB_TIMEOUT / timeout (seconds in files and env, e.g. "10" or "2.5")
  uint32_t max_skew_ms = 60000;    // TRLMDB_MAX_SKEW_MS / max_skew_ms
  LogLevel log = LogLevel::kWarn;  // TRLMDB_LOG / log
  std::string source;  // where the settings came from, for messages ("environment", a file path)
};

// Where a configuration is looked up. `env` is the process environment
// (tests pass their own); `env_path`/`no_subdir` as given to mdb_env_open.
struct ConfigInputs {
  std::map<std::string, std::string> env;
  std::string env_path;
  bool no_subdir = false;
};
ConfigInputs inputs_from_process(const char *env_path, bool no_subdir);

// Parses the settings. On a bad setting returns false and sets *error to one
// line naming the source, the key and what is wrong; *out is then unusable.
// No settings anywhere: returns true with out->configured == false.
bool load_config(const ConfigInputs &in, Config *out, std::string *error);

// "host:port", "[v6]:port", ":port" (= 127.0.0.1:port), "port". Port 0 allowed
// only when `allow_port0`.
bool parse_host_port(const std::string &s, bool allow_port0, HostPort *out, std::string *error);

// True for 127.0.0.0/8, ::1 and "localhost".
bool is_loopback_host(const std::string &host);

// The environment's name on the wire: config name, else the last component
// of the path (for MDB_NOSUBDIR the file name), without trailing slashes.
std::string wire_name(const Config &cfg, const std::string &env_path);

}  // namespace trlmdb::repl
