// Writes the seed corpus: a handful of valid inputs per fuzz target, made
// with the protocol's own encoders and a real in-memory handshake, so the
// fuzzers start from inputs that pass the first checks.
//   fuzz_gen_corpus <corpus dir>    (fuzz/corpus; existing seeds are replaced)
#include <sys/stat.h>

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "format.h"
#include "fuzz_util.h"
#include "handshake.h"
#include "recon_items.h"
#include "reconcile.h"
#include "wire.h"

using namespace trlmdb;
using namespace trlmdb::repl;
using trlmdb::fuzz::check;

namespace {

std::string g_root;

void put(const std::string &target, const std::string &name, const std::string &bytes) {
  std::string dir = g_root + "/" + target;
  mkdir(dir.c_str(), 0755);
  std::string path = dir + "/" + name;
  FILE *f = std::fopen(path.c_str(), "wb");
  if (!f) fuzz::fail("cannot write", path);
  std::fwrite(bytes.data(), 1, bytes.size(), f);
  std::fclose(f);
}

std::string u16(std::size_t n) {
  check(n <= 0xffff, "piece too long");
  return {static_cast<char>(n & 0xff), static_cast<char>(n >> 8)};
}
std::string piece(std::string_view s) { return u16(s.size()) + std::string(s); }
std::string u64(uint64_t v) {
  std::string s;
  for (int i = 0; i < 8; ++i) s.push_back(static_cast<char>(v >> (8 * i)));
  return s;
}

Change change(std::string_view db, std::string_view key, Ts ts, std::vector<std::string> values,
              uint32_t flags = 0) {
  return Change{make_xkey(db, key), ts, flags, std::move(values)};
}

void wire() {
  Ts put_ts{0x6500000012345678ull, 0x0a0b0c01}, del_ts{0x6500000012345679ull, 0x0a0b0c00};
  ChangesMsg cm;
  cm.seq = 300;
  cm.changes.push_back(change("", "k1", put_ts, {"v1"}));
  cm.changes.push_back(change("dups", "k2", put_ts, {"a", "b", std::string(130, 'c')}, 0x04));
  cm.changes.push_back(change("db", "gone", del_ts, {}));
  cm.changes.push_back(change("newdb", "", put_ts, {}, 0x08));
  std::vector<std::string> msgs(7);
  encode_changes(cm, &msgs[0]);
  encode_ack(AckMsg{12345}, &msgs[1]);
  encode_ping(MsgType::kPing, PingMsg{0x1122334455667788ull}, &msgs[2]);
  encode_error(ErrorMsg{"map full"}, &msgs[3]);
  encode_recon(std::string("\x10\x00\x00\x01\x02\x03\x04\x05\x06\x07\x08", 11), &msgs[4]);
  encode_catchup_done(&msgs[5]);
  encode_peers(PeersMsg{{0x01020300, 0x04050600}}, &msgs[6]);
  const char *names[] = {"changes", "ack", "ping", "error", "recon", "catchup_done", "peers"};
  std::string stream;
  for (std::size_t i = 0; i < msgs.size(); ++i) {
    put("fuzz_wire", std::string("msg_") + names[i], msgs[i]);
    append_frame(msgs[i], &stream);
  }
  // Control byte: max frame kMaxMessage (6), three read sizes; then the frames.
  put("fuzz_wire", "stream", std::string(1, char(6 | 2 << 3)) + "\x01\x07\x40" + stream);
  // Max frame 16: the changes frame is refused midway.
  put("fuzz_wire", "stream_oversized", std::string(1, char(2 | 0 << 3)) + "\x03" + stream);
  // Repeated stream (compaction of the reader's buffer).
  put("fuzz_wire", "stream_repeated",
      std::string(1, char(6 | 1 << 3 | 3 << 6)) + "\xff\x10" + stream);
}

constexpr uint64_t kNow = 0x6500000012345678ull;  // as fuzz_handshake's clock
uint64_t fixed_now() { return kNow; }

Handshake::Params params(bool initiator, bool secret) {
  Handshake::Params p;
  p.initiator = initiator;
  p.secret = secret ? "fuzz secret" : "";
  p.cluster = "trlmdb";
  p.env_name = initiator ? "db" : "";
  p.node = initiator ? 0x01020300 : 0x04050600;
  p.max_skew = uint64_t{60} << 32;
  p.wall_now = fixed_now;
  return p;
}

std::string body(const std::string &frame) { return frame.substr(4); }

void handshake() {
  for (bool secret : {false, true}) {
    Handshake ini(params(true, secret)), acc(params(false, secret));
    std::string ih = body(ini.hello_frame());
    check(acc.on_hello(ih).ok, "seed handshake: acceptor refused HELLO");
    std::string ah = body(acc.hello_frame());
    check(ini.on_hello(ah).ok, "seed handshake: initiator refused HELLO");
    std::string ia = body(ini.auth_frame());
    std::string aa = body(acc.auth_frame());
    std::string s = secret ? "_secret" : "";
    // Flags (<< 2): 1 acceptor sends its HELLO, 2 skew checked, 4 secret.
    unsigned flags = 1 | 2 | (secret ? 4 : 0);
    put("fuzz_handshake", "acceptor" + s, std::string(1, char(0 | flags << 2)) + piece(ih) + ia);
    put("fuzz_handshake", "initiator" + s, std::string(1, char(1 | flags << 2)) + piece(ah) + aa);
  }
  put("fuzz_handshake", "acceptor_error",
      std::string(1, char(0 | 1 << 2)) +
          piece(body(Handshake::error_frame("no such environment"))));
  put("fuzz_handshake", "channel_garbage",
      std::string(1, char(2)) + piece(std::string(17, 'x')) + piece(std::string(40, '\0')));
  put("fuzz_handshake", "channel_intact", std::string(1, char(3)) + piece("plaintext"));
  put("fuzz_handshake", "channel_flipped",
      std::string(1, char(3)) + piece("plaintext") + std::string(9, '\0') + "\x01");
}

void reconcile() {
  // Adversarial mode: the payloads an honest initiator sends to the target's
  // acceptor, recorded from a real exchange over the target's own snapshot.
  for (uint8_t shape : {0, 1, 2}) {
    uint8_t ctl =
        static_cast<uint8_t>(shape << 2);  // bit 0 clear: adversarial; bit 1 clear: acceptor
    uint64_t seed = 0x1234 + shape;
    uint8_t n = 40;
    uint64_t rng = seed;
    std::vector<ReconItem> mine, peer;
    for (int i = 0; i < n; ++i) mine.push_back({fuzz::make_kh(&rng, shape), fuzz::make_ts(&rng)});
    peer = mine;
    peer.resize(30);
    for (int i = 0; i < 6; ++i) peer[i].ts.time += 7;
    uint64_t prng = seed * 31;
    for (int i = 0; i < 5; ++i) peer.push_back({fuzz::make_kh(&prng, shape), fuzz::make_ts(&prng)});
    Reconciler ini(std::make_shared<const ReconSnapshot>(peer), true);
    Reconciler acc(std::make_shared<const ReconSnapshot>(mine), false);
    std::string input = std::string(1, char(ctl)) + u64(seed) + std::string(1, char(n));
    std::string msg = ini.start(), reply, error;
    while (!msg.empty()) {
      input += piece(msg);
      check(acc.on_message(msg, &reply, &error), "seed exchange", error);
      if (reply.empty()) break;
      check(ini.on_message(reply, &msg, &error), "seed exchange", error);
    }
    put("fuzz_reconcile", "adversarial_shape" + std::to_string(shape), input);
  }
  // Honest mode: n = 60 + 4 * 2 items; one byte per item picks who holds what.
  for (uint8_t shape : {0, 1, 2, 3}) {
    std::string input = std::string(1, char(1 | shape << 2)) + u64(0x9876 + shape) + "\x3c\x02";
    for (int i = 0; i < 68; ++i) input.push_back(static_cast<char>(i % 11));
    put("fuzz_reconcile", "honest_shape" + std::to_string(shape), input);
  }
}

void config() {
  // Flags: 1 MDB_NOSUBDIR, 2 trlmdb.conf, 4 explicit file, 8 secret file,
  // 16 TRLMDB_CONFIG names the explicit file. Sections: env, trlmdb.conf,
  // explicit file, secret file.
  put("fuzz_config", "env",
      std::string(1, '\0') +
          "PEERS=10.0.0.2:7000, [::1]:7001,db.example:7002\nLISTEN=127.0.0.1:7000\n"
          "TIMEOUT=2.5\nLOG=info\nNAME=db1\nNODE=n1\nMAX_SKEW_MS=5000\n");
  put("fuzz_config", "implicit_file",
      std::string(1, char(2)) +
          "\n%%\n# replication\nlisten = 0.0.0.0:7000\nsecret = s3cret\n"
          "peers = a.example:7000\nconnect = 10.1.1.1:7001\naccept = 10.0.0.1, [::1]\n"
          "max_skew_ms = 5000\ncluster = prod\nnode = n1\ntimeout = 10\nlog = debug\n");
  put("fuzz_config", "layers",
      std::string(1, char(2 | 4 | 8 | 16)) +
          "SECRET_FILE=secret\nCLUSTER=c1\n%%\nport = 7000\npeers = 10.0.0.9:7000\n"
          "%%\nlisten = [fe80::1%eth0]:7000\nsecret_file = secret\nname = remote\n%%\ntopsecret\n");
  put("fuzz_config", "no_subdir", std::string(1, char(1 | 2)) + "\n%%\nport = 0\nsecret = x\n");
  put("fuzz_config", "bad_timeout", std::string(1, '\0') + "TIMEOUT=0\nLISTEN=7000\n");
  put("fuzz_config", "host_port", "example.org:443");
  put("fuzz_config", "host_port_v6", "[2001:db8::1]:7000");
}

void format() {
  unsigned char ts[kTsSize];
  encode_ts(Ts{0x6500000012345678ull, 0x0a0b0c01}, ts);
  std::string t(reinterpret_cast<char *>(ts), kTsSize);
  put("fuzz_format", "xkey_ts", make_xkey("users", "alice") + t);
  put("fuzz_format", "marker_ts", make_xkey("", "") + t);
  put("fuzz_format", "clock_ms", u64(3600000) + make_xkey("_trlmdb_time", "k"));
}

}  // namespace

int main(int argc, char **argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <corpus dir>\n", argv[0]);
    return 2;
  }
  g_root = argv[1];
  mkdir(g_root.c_str(), 0755);
  wire();
  handshake();
  reconcile();
  config();
  format();
  return 0;
}
