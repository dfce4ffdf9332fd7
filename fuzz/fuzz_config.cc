// Replication settings (replicator/config.cc): environment variables and
// configuration files, written by people, read at mdb_env_open.
//
// Input: one flags byte, then sections separated by a line "%%": the
// environment ("NAME=value" lines; a name without the TRLMDB_ prefix gets
// it), trlmdb.conf beside the environment, the file TRLMDB_CONFIG names, and
// a secret file. Paths the input names are kept inside a temporary directory
// made once per process, so no input reads a device or another file.
//
// Properties of an accepted configuration: endpoints print as host:port text
// that parses back to the same endpoint; non-loopback listening has a
// secret; `configured` means an endpoint; bounds of the documented ranges.
// Errors are one line. parse_host_port on the whole input obeys the same
// round trip.
#include <stdlib.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "config.h"
#include "fuzz_util.h"

using namespace trlmdb;
using namespace trlmdb::repl;
using trlmdb::fuzz::check;

namespace {

const std::string &temp_dir() {
  static const std::string dir = [] {
    char tmpl[] = "/tmp/trlmdb-fuzz-config-XXXXXX";
    if (!mkdtemp(tmpl)) fuzz::fail("mkdtemp");
    std::string d = tmpl;
    // Removed at exit: libFuzzer runs exit normally.
    static std::string for_cleanup = d;
    std::atexit([] {
      for (const char *f : {"/trlmdb.conf", "/data.mdb.trlmdb.conf", "/explicit.conf", "/secret"})
        unlink((for_cleanup + f).c_str());
      rmdir(for_cleanup.c_str());
    });
    return d;
  }();
  return dir;
}

void write_file(const std::string &path, std::string_view text, bool present) {
  if (!present) {
    unlink(path.c_str());
    return;
  }
  FILE *f = std::fopen(path.c_str(), "wb");
  if (!f) fuzz::fail("cannot write", path);
  std::fwrite(text.data(), 1, text.size(), f);
  std::fclose(f);
}

// A file name from the input, as a path inside the temporary directory.
std::string confined(std::string_view name) {
  std::string n(name);
  for (char &c : n)
    if (c == '/') c = '_';
  return temp_dir() + "/" + n;
}

// secret_file lines name files relative to the configuration's directory;
// without slashes they cannot leave it.
std::string confine_file_text(std::string_view text) {
  std::string out;
  std::size_t at = 0;
  while (at < text.size()) {
    std::size_t nl = text.find('\n', at);
    std::string line(
        text.substr(at, nl == std::string_view::npos ? std::string_view::npos : nl - at + 1));
    at = nl == std::string_view::npos ? text.size() : nl + 1;
    std::size_t eq = line.find('=');
    if (eq != std::string::npos && line.find("secret_file") != std::string::npos &&
        line.find("secret_file") < eq) {
      for (std::size_t i = eq; i < line.size(); ++i)
        if (line[i] == '/') line[i] = '_';
    }
    out += line;
  }
  return out;
}

std::vector<std::string_view> sections(std::string_view s) {
  std::vector<std::string_view> out;
  constexpr std::string_view kSep = "\n%%\n";
  while (out.size() < 3) {
    std::size_t at = s.find(kSep);
    if (at == std::string_view::npos) break;
    out.push_back(s.substr(0, at));
    s.remove_prefix(at + kSep.size());
  }
  out.push_back(s);
  while (out.size() < 4) out.emplace_back();
  return out;
}

void check_endpoint(const HostPort &hp, bool allow_port0) {
  check(!hp.host.empty(), "endpoint without a host");
  check(allow_port0 || hp.port != 0, "port 0 outside listen");
  HostPort again;
  std::string error;
  check(parse_host_port(hp.str(), allow_port0, &again, &error), "printed endpoint does not parse",
        hp.str() + ": " + error);
  check(again == hp, "printed endpoint parses differently", hp.str());
}

void check_label(const std::string &s) {
  check(s.size() <= 255, "label longer than 255 bytes");
  for (unsigned char c : s) check(c >= 0x20 && c != 0x7f, "control byte in a label");
}

void one_line(const std::string &error) {
  check(!error.empty(), "refusal without a message");
  check(error.find('\n') == std::string::npos, "multi-line error", error);
}

void config(std::string_view input) {
  const std::string &dir = temp_dir();
  uint8_t flags = input.empty() ? 0 : static_cast<uint8_t>(input[0]);
  if (!input.empty()) input.remove_prefix(1);
  std::vector<std::string_view> sec = sections(input);

  ConfigInputs in;
  in.no_subdir = flags & 1;
  in.env_path = in.no_subdir ? dir + "/data.mdb" : dir;
  write_file(dir + (in.no_subdir ? "/data.mdb.trlmdb.conf" : "/trlmdb.conf"),
             confine_file_text(sec[1]), flags & 2);
  write_file(dir + "/explicit.conf", confine_file_text(sec[2]), flags & 4);
  write_file(dir + "/secret", sec[3], flags & 8);
  if (flags & 16) in.env["TRLMDB_CONFIG"] = dir + "/explicit.conf";

  std::string_view env = sec[0];
  while (!env.empty()) {
    std::size_t nl = env.find('\n');
    std::string_view line = env.substr(0, nl);
    env.remove_prefix(nl == std::string_view::npos ? env.size() : nl + 1);
    std::size_t eq = line.find('=');
    if (eq == std::string_view::npos) continue;
    std::string name(line.substr(0, eq));
    if (name.rfind("TRLMDB_", 0) != 0) name = "TRLMDB_" + name;
    std::string value(line.substr(eq + 1));
    if (name == "TRLMDB_CONFIG" || name == "TRLMDB_SECRET_FILE") {
      if (!value.empty()) value = confined(value);
    }
    in.env[name] = value;
  }

  Config cfg;
  std::string error;
  if (!load_config(in, &cfg, &error)) {
    one_line(error);
    return;
  }
  check(cfg.configured == (cfg.listen.has_value() || !cfg.peers.empty()),
        "configured without an endpoint, or the reverse");
  if (cfg.listen) {
    check_endpoint(*cfg.listen, true);
    check(cfg.has_secret || is_loopback_host(cfg.listen->host),
          "non-loopback listening without a secret", cfg.listen->str());
  }
  for (std::size_t i = 0; i < cfg.peers.size(); ++i) {
    check_endpoint(cfg.peers[i], false);
    for (std::size_t j = 0; j < i; ++j) check(!(cfg.peers[j] == cfg.peers[i]), "repeated peer");
  }
  check(!cfg.has_secret || !cfg.secret.empty(), "empty secret accepted");
  check(cfg.timeout_ms >= 1 && cfg.timeout_ms <= 86400u * 1000, "timeout out of range");
  check_label(cfg.name);
  check_label(cfg.node);
  check_label(cfg.cluster);
  check(static_cast<int>(cfg.log) >= 0 && static_cast<int>(cfg.log) <= 3, "log level");
  for (const std::string &h : cfg.accept) check(!h.empty(), "empty accepted host");
  wire_name(cfg, in.env_path);
}

void host_port(std::string_view input) {
  std::string s(input);
  for (bool port0 : {false, true}) {
    HostPort hp;
    std::string error;
    if (parse_host_port(s, port0, &hp, &error)) {
      check_endpoint(hp, port0);
    } else {
      // The message quotes the input, which may hold a newline itself.
      check(!error.empty(), "refusal without a message");
    }
  }
  is_loopback_host(s);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char *>(data), size);
  config(input);
  host_port(input);
  return 0;
}
