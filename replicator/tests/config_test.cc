// Replication settings (config.h) and the replicator's log (log.h).
#include "config.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "log.h"

namespace trlmdb::repl {
namespace {

using ::testing::HasSubstr;

struct Loaded {
  bool ok;
  Config cfg;
  std::string error;
};

Loaded load(std::map<std::string, std::string> env, const std::string &env_path = "",
            bool no_subdir = false) {
  ConfigInputs in;
  in.env = std::move(env);
  in.env_path = env_path;
  in.no_subdir = no_subdir;
  Loaded l;
  l.error = "(untouched)";
  l.ok = load_config(in, &l.cfg, &l.error);
  return l;
}

// A one-line error naming where the problem is.
void expect_error(const Loaded &l, const std::string &part) {
  EXPECT_FALSE(l.ok);
  EXPECT_THAT(l.error, HasSubstr(part));
  EXPECT_EQ(l.error.find('\n'), std::string::npos) << l.error;
}

HostPort hp(const std::string &h, uint16_t p) { return HostPort{h, p}; }

// Tests of configuration files: each gets a fresh directory, which stands for
// an environment's directory too, removed afterwards.
class ConfigFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/trlmdb-config-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  const std::string &dir() const { return dir_; }
  // Writes `text` to `name` under dir(), creating directories on the way.
  std::string file(const std::string &name, const std::string &text) const {
    std::string p = dir_ + "/" + name;
    std::filesystem::create_directories(std::filesystem::path(p).parent_path());
    std::ofstream(p) << text;
    return p;
  }
  // dir() as the environment, `text` as its trlmdb.conf, nothing else set.
  Loaded load_conf(const std::string &text) const {
    file("trlmdb.conf", text);
    return load({}, dir_);
  }
  std::string conf_path() const { return dir_ + "/trlmdb.conf"; }

 private:
  std::string dir_;
};
using ConfigFileErrors = ConfigFiles;

// ---- nothing configured ------------------------------------------------------

TEST_F(ConfigFiles, NothingSetIsNotConfigured) {
  Loaded l = load({{"PATH", "/bin"}, {"TRLMDB_REAL_LMDB", "/x.so"}}, dir());
  ASSERT_TRUE(l.ok) << l.error;
  EXPECT_FALSE(l.cfg.configured);
  EXPECT_FALSE(l.cfg.listen);
  EXPECT_TRUE(l.cfg.peers.empty());
  EXPECT_FALSE(l.cfg.has_secret);
  EXPECT_EQ(l.cfg.cluster, "trlmdb");
  EXPECT_EQ(l.cfg.timeout_ms, 10000u);
  EXPECT_EQ(l.cfg.max_skew_ms, 60000u);
  EXPECT_EQ(l.cfg.log, LogLevel::kWarn);
}

TEST_F(ConfigFiles, SecretOrLogLevelAloneDoesNotConfigure) {
  Loaded l = load({{"TRLMDB_SECRET", "s3cret"}, {"TRLMDB_LOG", "debug"}}, dir());
  ASSERT_TRUE(l.ok) << l.error;
  EXPECT_FALSE(l.cfg.configured);
  EXPECT_TRUE(l.cfg.has_secret);
  EXPECT_EQ(l.cfg.log, LogLevel::kDebug);

  l = load_conf("secret = x\nnode = n1\ntimeout = 3\n");
  ASSERT_TRUE(l.ok) << l.error;
  EXPECT_FALSE(l.cfg.configured);
}

TEST(Config, EmptyVariablesCountAsUnset) {
  Loaded l = load({{"TRLMDB_LISTEN", ""}, {"TRLMDB_PEERS", ""}, {"TRLMDB_LOG", ""}});
  ASSERT_TRUE(l.ok) << l.error;
  EXPECT_FALSE(l.cfg.configured);
}

// ---- every key ------------------------------------------------------------------

TEST(Config, EveryKeyFromEnvironment) {
  Loaded l = load({{"TRLMDB_LISTEN", "0.0.0.0:7000"},
                   {"TRLMDB_PEERS", "10.0.0.2:7000, [fd00::3]:7001,node4:7002"},
                   {"TRLMDB_SECRET", "top secret"},
                   {"TRLMDB_NAME", "shard1"},
                   {"TRLMDB_NODE", "east-1"},
                   {"TRLMDB_CLUSTER", "prod"},
                   {"TRLMDB_ACCEPT", "10.0.0.2,[fd00::3], node4"},
                   {"TRLMDB_TIMEOUT", "2.5"},
                   {"TRLMDB_MAX_SKEW_MS", "1500"},
                   {"TRLMDB_LOG", "info"}});
  ASSERT_TRUE(l.ok) << l.error;
  const Config &c = l.cfg;
  EXPECT_TRUE(c.configured);
  EXPECT_EQ(c.listen, hp("0.0.0.0", 7000));
  EXPECT_EQ(c.peers,
            (std::vector<HostPort>{hp("10.0.0.2", 7000), hp("fd00::3", 7001), hp("node4", 7002)}));
  EXPECT_TRUE(c.has_secret);
  EXPECT_EQ(c.secret, "top secret");
  EXPECT_EQ(c.name, "shard1");
  EXPECT_EQ(c.node, "east-1");
  EXPECT_EQ(c.cluster, "prod");
  EXPECT_EQ(c.accept, (std::vector<std::string>{"10.0.0.2", "fd00::3", "node4"}));
  EXPECT_EQ(c.timeout_ms, 2500u);
  EXPECT_EQ(c.max_skew_ms, 1500u);
  EXPECT_EQ(c.log, LogLevel::kInfo);
  EXPECT_EQ(c.source, "environment");
}

TEST_F(ConfigFiles, SecretFileFromEnvironmentLosesTrailingNewline) {
  std::string f = file("secret", "abc def\n\n");
  Loaded l = load({{"TRLMDB_PEERS", "127.0.0.1:9"}, {"TRLMDB_SECRET_FILE", f}});
  ASSERT_TRUE(l.ok) << l.error;
  EXPECT_TRUE(l.cfg.has_secret);
  EXPECT_EQ(l.cfg.secret, "abc def");
}

TEST_F(ConfigFiles, EveryKeyFromFile) {
  file("keys/cluster.key", "from-file\n");
  std::string db = dir() + "/db";
  file("db/trlmdb.conf",
       "# replication of db\n"
       "\n"
       "   listen = [::]:7000   \n"
       "peers=127.0.0.1:7001\n"
       "\tpeers = [::1]:7002 , localhost:7003\n"
       "secret_file = ../keys/cluster.key\n"
       "name = wire-db\n"
       "node = west 2\n"
       "cluster = staging\n"
       "accept = 127.0.0.1\n"
       "timeout = 7\n"
       "max_skew_ms = 250\n"
       "log = debug\n"
       "   # indented comment\n");
  Loaded l = load({}, db);
  ASSERT_TRUE(l.ok) << l.error;
  const Config &c = l.cfg;
  EXPECT_TRUE(c.configured);
  EXPECT_EQ(c.listen, hp("::", 7000));
  EXPECT_EQ(c.peers,
            (std::vector<HostPort>{hp("127.0.0.1", 7001), hp("::1", 7002), hp("localhost", 7003)}));
  EXPECT_TRUE(c.has_secret);
  EXPECT_EQ(c.secret, "from-file");
  EXPECT_EQ(c.name, "wire-db");
  EXPECT_EQ(c.node, "west 2");
  EXPECT_EQ(c.cluster, "staging");
  EXPECT_EQ(c.accept, std::vector<std::string>{"127.0.0.1"});
  EXPECT_EQ(c.timeout_ms, 7000u);
  EXPECT_EQ(c.max_skew_ms, 250u);
  EXPECT_EQ(c.log, LogLevel::kDebug);
  EXPECT_EQ(c.source, db + "/trlmdb.conf");
}

TEST_F(ConfigFiles, LiteralSecretInFile) {
  Loaded l = load_conf("listen = 192.168.1.1:7000\nsecret = p@ss=word\n");
  ASSERT_TRUE(l.ok) << l.error;
  EXPECT_EQ(l.cfg.secret, "p@ss=word");  // only the first '=' separates
}

TEST_F(ConfigFiles, NoSubdirFileSitsBesideTheDataFile) {
  file("data.mdb.trlmdb.conf", "peers = 127.0.0.1:7100\n");
  file("data.mdb/trlmdb.conf", "peers = 127.0.0.1:7200\n");  // must not be read
  Loaded l = load({}, dir() + "/data.mdb", true);
  ASSERT_TRUE(l.ok) << l.error;
  EXPECT_EQ(l.cfg.peers, std::vector<HostPort>{hp("127.0.0.1", 7100)});
}

// ---- precedence -------------------------------------------------------------------

TEST_F(ConfigFiles, PrecedenceIsPerKeyEnvThenConfigFileThenEnvFile) {
  std::string explicit_file = file("explicit.conf",
                                   "listen = 127.0.0.1:2000\n"
                                   "peers = 127.0.0.1:2001\n"
                                   "node = from-explicit\n"
                                   "secret = explicit-secret\n");
  file("db/trlmdb.conf",
       "listen = 127.0.0.1:3000\n"
       "peers = 127.0.0.1:3001\n"
       "node = from-envdir\n"
       "cluster = from-envdir\n"
       "timeout = 4\n"
       "secret = envdir-secret\n"
       "log = info\n");
  Loaded l = load({{"TRLMDB_CONFIG", explicit_file},
                   {"TRLMDB_LISTEN", "127.0.0.1:1000"},
                   {"TRLMDB_LOG", "error"}},
                  dir() + "/db");
  ASSERT_TRUE(l.ok) << l.error;
  const Config &c = l.cfg;
  EXPECT_EQ(c.listen, hp("127.0.0.1", 1000));                        // environment
  EXPECT_EQ(c.log, LogLevel::kError);                                // environment
  EXPECT_EQ(c.peers, std::vector<HostPort>{hp("127.0.0.1", 2001)});  // explicit, not merged
  EXPECT_EQ(c.node, "from-explicit");                                // explicit
  EXPECT_EQ(c.secret, "explicit-secret");                            // explicit
  EXPECT_EQ(c.cluster, "from-envdir");                               // only there
  EXPECT_EQ(c.timeout_ms, 4000u);                                    // only there
  EXPECT_EQ(c.source, "environment, " + explicit_file + ", " + dir() + "/db/trlmdb.conf");

  // Secret and secret file are one setting: the environment's file beats a
  // file's literal secret, and a lower source's unreadable file is never read.
  file("db/trlmdb.conf", "peers = 127.0.0.1:3001\nsecret_file = /nonexistent/key\n");
  std::string key = file("env.key", "env-key\n");
  l = load({{"TRLMDB_SECRET_FILE", key}}, dir() + "/db");
  ASSERT_TRUE(l.ok) << l.error;
  EXPECT_EQ(l.cfg.secret, "env-key");
}

// ---- the original trlmdb replicator's keys ------------------------------------------

TEST_F(ConfigFiles, OriginalReplicatorKeys) {
  Loaded l = load_conf(
      "node = alpha\n"
      "port = 7000\n"
      "connect = 10.0.0.2:7000, 10.0.0.3:7000\n"
      "connect = 10.0.0.4:7000\n"
      "accept = 10.0.0.2, 10.0.0.3\n"
      "accept = 10.0.0.4\n"
      "timeout = 30\n"
      "secret = s\n");
  ASSERT_TRUE(l.ok) << l.error;
  const Config &c = l.cfg;
  EXPECT_TRUE(c.configured);
  EXPECT_EQ(c.node, "alpha");
  EXPECT_EQ(c.listen, hp("0.0.0.0", 7000));
  EXPECT_EQ(c.peers, (std::vector<HostPort>{hp("10.0.0.2", 7000), hp("10.0.0.3", 7000),
                                            hp("10.0.0.4", 7000)}));
  EXPECT_EQ(c.accept, (std::vector<std::string>{"10.0.0.2", "10.0.0.3", "10.0.0.4"}));
  EXPECT_EQ(c.timeout_ms, 30000u);
}

TEST_F(ConfigFiles, ListenBeatsPortInTheSameFileWhicheverComesFirst) {
  Loaded l = load_conf("listen = 127.0.0.1:7001\nport = 7000\n");
  ASSERT_TRUE(l.ok) << l.error;
  EXPECT_EQ(l.cfg.listen, hp("127.0.0.1", 7001));
  l = load_conf("port = 7000\nlisten = 127.0.0.1:7002\n");
  ASSERT_TRUE(l.ok) << l.error;
  EXPECT_EQ(l.cfg.listen, hp("127.0.0.1", 7002));
}

TEST_F(ConfigFiles, PortAloneListensEverywhereAndThereforeNeedsASecret) {
  Loaded l = load_conf("port = 7000\n");
  expect_error(l,
               "listening on 0.0.0.0:7000 needs a cluster secret "
               "(TRLMDB_SECRET or TRLMDB_SECRET_FILE)");
  EXPECT_THAT(l.error, HasSubstr("trlmdb.conf:1: port"));
}

TEST(Config, ConnectOnlyAndListenPortZeroAreValid) {
  Loaded l = load({{"TRLMDB_PEERS", "127.0.0.1:7000"}});
  ASSERT_TRUE(l.ok) << l.error;
  EXPECT_TRUE(l.cfg.configured);
  EXPECT_FALSE(l.cfg.listen);
  l = load({{"TRLMDB_LISTEN", "127.0.0.1:0"}});
  ASSERT_TRUE(l.ok) << l.error;
  EXPECT_TRUE(l.cfg.configured);
  EXPECT_EQ(l.cfg.listen, hp("127.0.0.1", 0));
  l = load({{"TRLMDB_LISTEN", "[::1]:0"}});  // loopback: no secret needed
  ASSERT_TRUE(l.ok) << l.error;
}

// ---- errors ---------------------------------------------------------------------------

TEST_F(ConfigFileErrors, BadHostPort) {
  Loaded l = load({{"TRLMDB_PEERS", "localhost:x"}});
  EXPECT_FALSE(l.ok);
  EXPECT_EQ(l.error, "TRLMDB_PEERS: \"localhost:x\" is not host:port");
  expect_error(load({{"TRLMDB_LISTEN", "127.0.0.1"}}), "TRLMDB_LISTEN: \"127.0.0.1\"");
  expect_error(load({{"TRLMDB_PEERS", "127.0.0.1:1,,127.0.0.1:2"}}), "TRLMDB_PEERS: empty entry");
  expect_error(load({{"TRLMDB_PEERS", "127.0.0.1:0"}}), "TRLMDB_PEERS: \"127.0.0.1:0\": port 0");
  expect_error(load_conf("# c\nconnect = 10.0.0.1:99999\n"),
               conf_path() + ":2: connect: \"10.0.0.1:99999\"");
  expect_error(load({{"TRLMDB_ACCEPT", "10.0.0.1, bad host"}}), "TRLMDB_ACCEPT: \"bad host\"");
}

TEST_F(ConfigFileErrors, UnknownKeyNamesFileLineAndKey) {
  expect_error(load_conf("listen = 127.0.0.1:1\n\n# x\nlsiten = 127.0.0.1:2\n"),
               conf_path() + ":4: \"lsiten\": unknown key");
  // Keys are the lower-case names.
  expect_error(load_conf("Port = 7000\n"), ":1: \"Port\": unknown key");
}

TEST_F(ConfigFileErrors, MalformedLines) {
  const std::string f = conf_path();
  expect_error(load_conf("listen 127.0.0.1:1\n"), f + ":1: expected name = value");
  expect_error(load_conf("node = a\nnode = b\n"), f + ":2: node: given twice (also on line 1)");
  expect_error(load_conf("node =\n"), f + ":1: node: empty value");
  expect_error(load_conf("secret = a\nsecret_file = b\n"),
               f + ":2: secret_file: give either secret or secret_file");
}

TEST_F(ConfigFileErrors, ExplicitConfigFileMustExist) {
  expect_error(load({{"TRLMDB_CONFIG", dir() + "/nope.conf"}}),
               "TRLMDB_CONFIG: cannot read \"" + dir() + "/nope.conf\"");
  // The implicit one may be absent, but not unreadable.
  std::filesystem::create_directories(dir() + "/db/trlmdb.conf");
  expect_error(load({}, dir() + "/db"), "cannot read \"" + dir() + "/db/trlmdb.conf\"");
}

TEST_F(ConfigFileErrors, SecretProblems) {
  expect_error(load({{"TRLMDB_SECRET_FILE", dir() + "/missing"}}),
               "TRLMDB_SECRET_FILE: cannot read \"" + dir() + "/missing\"");
  expect_error(load_conf("peers = 127.0.0.1:1\nsecret_file = missing.key\n"),
               conf_path() + ":2: secret_file: cannot read \"" + dir() + "/missing.key\"");
  std::string empty = file("empty.key", "\n");
  expect_error(load({{"TRLMDB_SECRET_FILE", empty}}), "TRLMDB_SECRET_FILE: ");
  expect_error(load({{"TRLMDB_SECRET_FILE", empty}}), "is empty");
  expect_error(load({{"TRLMDB_SECRET", ""}}), "TRLMDB_SECRET: empty secret");
  expect_error(load({{"TRLMDB_SECRET", "a"}, {"TRLMDB_SECRET_FILE", empty}}),
               "give either TRLMDB_SECRET or TRLMDB_SECRET_FILE");
  if (geteuid() != 0) {  // root reads anything
    std::string locked = file("locked.key", "k\n");
    chmod(locked.c_str(), 0);
    expect_error(load({{"TRLMDB_SECRET_FILE", locked}}), "Permission denied");
  }
}

TEST(ConfigErrors, NonLoopbackListenNeedsSecret) {
  Loaded l = load({{"TRLMDB_LISTEN", "0.0.0.0:7000"}});
  expect_error(l,
               "listening on 0.0.0.0:7000 needs a cluster secret "
               "(TRLMDB_SECRET or TRLMDB_SECRET_FILE)");
  EXPECT_THAT(l.error, HasSubstr("TRLMDB_LISTEN: "));
  expect_error(load({{"TRLMDB_LISTEN", "[::]:7000"}}), "listening on [::]:7000 needs");
  expect_error(load({{"TRLMDB_LISTEN", "myhost:7000"}}), "listening on myhost:7000 needs");
  EXPECT_TRUE(load({{"TRLMDB_LISTEN", "0.0.0.0:7000"}, {"TRLMDB_SECRET", "k"}}).ok);
  EXPECT_TRUE(load({{"TRLMDB_LISTEN", "127.5.6.7:7000"}}).ok);
  EXPECT_TRUE(load({{"TRLMDB_LISTEN", "localhost:7000"}}).ok);
}

TEST_F(ConfigFileErrors, BadLogLevel) {
  expect_error(load({{"TRLMDB_LOG", "verbose"}}),
               "TRLMDB_LOG: \"verbose\" is not a log level (error, warn, info or debug)");
  expect_error(load_conf("log = DEBUG\n"), ":1: log: \"DEBUG\" is not a log level");
}

TEST(ConfigErrors, BadTimeoutAndSkew) {
  for (const char *bad : {"abc", "-1", "0", "0.0001", "1e3", "2.", ".5", "1.2.3", "100000", "5s"})
    expect_error(load({{"TRLMDB_TIMEOUT", bad}}), std::string("TRLMDB_TIMEOUT: \"") + bad + "\"");
  Loaded ok = load({{"TRLMDB_TIMEOUT", "0.25"}});
  ASSERT_TRUE(ok.ok) << ok.error;
  EXPECT_EQ(ok.cfg.timeout_ms, 250u);
  ok = load({{"TRLMDB_TIMEOUT", " 1.0015 "}});
  ASSERT_TRUE(ok.ok) << ok.error;
  EXPECT_EQ(ok.cfg.timeout_ms, 1001u);
  for (const char *bad : {"x", "-5", "4294967296", "1.5"})
    expect_error(load({{"TRLMDB_MAX_SKEW_MS", bad}}), "TRLMDB_MAX_SKEW_MS: ");
}

// ---- helpers ------------------------------------------------------------------------------

TEST(ParseHostPort, Accepts) {
  struct Case {
    const char *in;
    HostPort want;
    const char *str;
  } cases[] = {
      {"127.0.0.1:7000", hp("127.0.0.1", 7000), "127.0.0.1:7000"},
      {"localhost:1", hp("localhost", 1), "localhost:1"},
      {"node-3.example.com:65535", hp("node-3.example.com", 65535), "node-3.example.com:65535"},
      {"[::1]:5", hp("::1", 5), "[::1]:5"},
      {"[fe80::1%eth0]:7", hp("fe80::1%eth0", 7), "[fe80::1%eth0]:7"},
      {":7000", hp("127.0.0.1", 7000), "127.0.0.1:7000"},
      {"7000", hp("127.0.0.1", 7000), "127.0.0.1:7000"},
  };
  for (const auto &c : cases) {
    HostPort got;
    std::string err;
    ASSERT_TRUE(parse_host_port(c.in, false, &got, &err)) << c.in << ": " << err;
    EXPECT_EQ(got, c.want) << c.in;
    EXPECT_EQ(got.str(), c.str);
  }
  HostPort got;
  std::string err;
  EXPECT_TRUE(parse_host_port("[::1]:0", true, &got, &err)) << err;
  EXPECT_EQ(got, hp("::1", 0));
  EXPECT_FALSE(parse_host_port("[::1]:0", false, &got, &err));
  EXPECT_THAT(err, HasSubstr("port 0"));
}

TEST(ParseHostPort, Rejects) {
  for (const char *bad : {"",
                          "host",
                          "host:",
                          "host:x",
                          "host:70000",
                          "host:123456",
                          "host:7000x",
                          "host:-1",
                          "host:+5",
                          "host: 5",
                          "host:5 ",
                          "[::1]5",
                          "[::1]:",
                          "[::1",
                          "::1:5",
                          "[zz]:5",
                          "[127.0.0.1]:5",
                          "[]:5",
                          "1.2.3.999:5",
                          "bad host:5",
                          "a/b:5",
                          "[::1]:5]",
                          "[::1]:5x"}) {
    HostPort got{"unchanged", 1};
    std::string err;
    EXPECT_FALSE(parse_host_port(bad, true, &got, &err)) << bad;
    EXPECT_THAT(err, HasSubstr(std::string("\"") + bad + "\"")) << bad;
    EXPECT_EQ(got, hp("unchanged", 1)) << bad;
  }
}

TEST(IsLoopbackHost, Cases) {
  for (const char *yes :
       {"127.0.0.1", "127.255.0.9", "::1", "localhost", "LocalHost", "::ffff:127.0.0.1"})
    EXPECT_TRUE(is_loopback_host(yes)) << yes;
  for (const char *no :
       {"0.0.0.0", "::", "128.0.0.1", "10.0.0.1", "localhost.example", "fe80::1", "::2", "myhost"})
    EXPECT_FALSE(is_loopback_host(no)) << no;
}

TEST(WireName, Cases) {
  Config c;
  EXPECT_EQ(wire_name(c, "/srv/pdns.lmdb-1"), "pdns.lmdb-1");
  EXPECT_EQ(wire_name(c, "/srv/mydb/"), "mydb");
  EXPECT_EQ(wire_name(c, "/srv/mydb///"), "mydb");
  EXPECT_EQ(wire_name(c, "mydb"), "mydb");
  EXPECT_EQ(wire_name(c, "./a/mydb"), "mydb");
  EXPECT_EQ(wire_name(c, "/var/lib/data.mdb"), "data.mdb");  // MDB_NOSUBDIR: the file name
  std::string cwd = std::filesystem::current_path().filename().string();
  if (cwd.empty()) cwd = "/";
  EXPECT_EQ(wire_name(c, "."), cwd);
  EXPECT_EQ(wire_name(c, "./"), cwd);
  c.name = "named";
  EXPECT_EQ(wire_name(c, "/srv/mydb"), "named");
}

TEST(InputsFromProcess, CopiesOnlyTrlmdbVariables) {
  setenv("TRLMDB_CONFIG_TEST_MARK", "v=1", 1);
  setenv("TRLMDBX_NOT_OURS", "x", 1);
  ConfigInputs in = inputs_from_process("/some/env", true);
  unsetenv("TRLMDB_CONFIG_TEST_MARK");
  unsetenv("TRLMDBX_NOT_OURS");
  EXPECT_EQ(in.env_path, "/some/env");
  EXPECT_TRUE(in.no_subdir);
  ASSERT_EQ(in.env.count("TRLMDB_CONFIG_TEST_MARK"), 1u);
  EXPECT_EQ(in.env["TRLMDB_CONFIG_TEST_MARK"], "v=1");
  EXPECT_EQ(in.env.count("TRLMDBX_NOT_OURS"), 0u);
  EXPECT_EQ(in.env.count("PATH"), 0u);
  for (const auto &[k, v] : in.env) EXPECT_EQ(k.rfind("TRLMDB_", 0), 0u) << k;
  EXPECT_EQ(inputs_from_process(nullptr, false).env_path, "");
}

// ---- log ---------------------------------------------------------------------------------

// Points stdout at a pipe and stderr at a file for the lifetime of the object.
class CaptureOutput {
 public:
  CaptureOutput() {
    fflush(stdout);
    fflush(stderr);
    saved_out_ = dup(1);
    saved_err_ = dup(2);
    EXPECT_EQ(pipe(out_pipe_), 0);
    // Both ends non-blocking: a stray write to stdout must show up as a
    // failure, not fill the pipe and hang the test.
    fcntl(out_pipe_[0], F_SETFL, O_NONBLOCK);
    fcntl(out_pipe_[1], F_SETFL, O_NONBLOCK);
    dup2(out_pipe_[1], 1);
    char tmpl[] = "/tmp/trlmdb-log-XXXXXX";
    err_fd_ = mkstemp(tmpl);
    unlink(tmpl);
    dup2(err_fd_, 2);
  }
  ~CaptureOutput() { restore(); }
  // Restores stdout/stderr and returns {stdout bytes, stderr bytes}.
  std::pair<std::string, std::string> finish() {
    fflush(stdout);
    restore();
    std::string out, err;
    char buf[4096];
    ssize_t n;
    while ((n = read(out_pipe_[0], buf, sizeof buf)) > 0) out.append(buf, n);
    lseek(err_fd_, 0, SEEK_SET);
    while ((n = read(err_fd_, buf, sizeof buf)) > 0) err.append(buf, n);
    return {out, err};
  }

 private:
  void restore() {
    if (saved_out_ < 0) return;
    dup2(saved_out_, 1);
    dup2(saved_err_, 2);
    close(saved_out_);
    close(saved_err_);
    close(out_pipe_[1]);
    saved_out_ = -1;
  }
  int saved_out_ = -1, saved_err_ = -1, out_pipe_[2] = {-1, -1}, err_fd_ = -1;
};

class Log : public ::testing::Test {
 protected:
  void SetUp() override { g_log_level = static_cast<int>(LogLevel::kWarn); }
  void TearDown() override { g_log_level = static_cast<int>(LogLevel::kWarn); }
};

TEST_F(Log, DefaultLevelIsWarn) {
  EXPECT_TRUE(log_enabled(LogLevel::kError));
  EXPECT_TRUE(log_enabled(LogLevel::kWarn));
  EXPECT_FALSE(log_enabled(LogLevel::kInfo));
  EXPECT_FALSE(log_enabled(LogLevel::kDebug));
}

TEST_F(Log, LevelOnlyRises) {
  set_log_level_at_least(LogLevel::kInfo);
  EXPECT_EQ(g_log_level.load(), static_cast<int>(LogLevel::kInfo));
  set_log_level_at_least(LogLevel::kError);
  EXPECT_EQ(g_log_level.load(), static_cast<int>(LogLevel::kInfo));
  set_log_level_at_least(LogLevel::kDebug);
  EXPECT_EQ(g_log_level.load(), static_cast<int>(LogLevel::kDebug));
}

TEST_F(Log, LinesGoToStderrOnlyWithPrefixAndLevel) {
  CaptureOutput cap;
  log(LogLevel::kError, "peer %s refused: %d", "b", 7);
  log(LogLevel::kWarn, "slow");
  log(LogLevel::kInfo, "hidden at warn");
  TRLMDB_LOG(LogLevel::kDebug, "hidden too %d", 1);
  set_log_level_at_least(LogLevel::kDebug);
  log(LogLevel::kInfo, "connected");
  TRLMDB_LOG(LogLevel::kDebug, "frame %u", 3u);
  log(LogLevel::kWarn, "two\nlines\tand\ttabs");
  auto [out, err] = cap.finish();
  EXPECT_EQ(out, "");
  EXPECT_EQ(err,
            "trlmdb: peer b refused: 7\n"
            "trlmdb: warning: slow\n"
            "trlmdb: info: connected\n"
            "trlmdb: debug: frame 3\n"
            "trlmdb: warning: two?lines?and?tabs\n");
}

TEST_F(Log, LongMessageIsOneTruncatedLine) {
  CaptureOutput cap;
  std::string big(10000, 'x');
  log(LogLevel::kError, "%s", big.c_str());
  auto [out, err] = cap.finish();
  EXPECT_EQ(out, "");
  ASSERT_FALSE(err.empty());
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1);
  EXPECT_EQ(err.back(), '\n');
  EXPECT_LE(err.size(), 4096u);
  EXPECT_EQ(err.substr(err.size() - 4), "...\n");
}

TEST_F(Log, LinesFromThreadsDoNotInterleave) {
  CaptureOutput cap;
  constexpr int kThreads = 4, kLines = 500;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([t] {
      std::string pad(100 + t * 37, 'a' + t);
      for (int i = 0; i < kLines; ++i) log(LogLevel::kError, "t%d %d %s", t, i, pad.c_str());
    });
  for (auto &th : threads) th.join();
  auto [out, err] = cap.finish();
  EXPECT_EQ(out, "");
  std::istringstream in(err);
  std::string line;
  std::set<std::string> seen;
  while (std::getline(in, line)) {
    int t = -1, i = -1;
    char pad[512] = {};
    ASSERT_EQ(sscanf(line.c_str(), "trlmdb: t%d %d %511s", &t, &i, pad), 3) << line;
    ASSERT_TRUE(t >= 0 && t < kThreads) << line;
    EXPECT_EQ(std::string(pad), std::string(100 + t * 37, 'a' + t)) << line;
    seen.insert(line);
  }
  EXPECT_EQ(seen.size(), size_t(kThreads * kLines));
}

}  // namespace
}  // namespace trlmdb::repl
