// The handshake (replicator/handshake.cc): what an unauthenticated peer
// controls. Modes, chosen by the first byte:
//  0 an acceptor fed a HELLO body then an AUTH body from the input;
//  1 an initiator likewise, with the acceptor's HELLO and AUTH;
//  2 a session after a real in-memory handshake, fed arbitrary frame bodies:
//    none may open (the input cannot be sealed with a key it never saw), and
//    after the first refusal the channel refuses even genuine frames;
//  3 a genuine sealed frame altered by a mask from the input: it opens only if
//    unaltered, to the plaintext sealed, and never twice (replay).
// Every input also goes through peek_env_name and parse_error, which must
// agree with on_hello.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "format.h"
#include "fuzz_util.h"
#include "handshake.h"
#include "wire.h"

using namespace trlmdb;
using namespace trlmdb::repl;
using trlmdb::fuzz::check;

namespace {

constexpr uint64_t kNow = 0x6500000012345678ull;
uint64_t fixed_now() { return kNow; }

Handshake::Params params(bool initiator, bool secret, bool skew) {
  Handshake::Params p;
  p.initiator = initiator;
  p.secret = secret ? "fuzz secret" : "";
  p.cluster = "trlmdb";
  p.env_name = initiator ? "db" : "";
  p.node = initiator ? 0x01020300 : 0x04050600;
  p.max_skew = skew ? uint64_t{60} << 32 : 0;
  p.wall_now = fixed_now;
  return p;
}

std::string body_of(const std::string &frame) {
  check(frame.size() >= 4, "frame shorter than its length");
  uint32_t len = get_be32(reinterpret_cast<const unsigned char *>(frame.data()));
  check(len == frame.size() - 4, "frame length prefix is wrong");
  return frame.substr(4);
}

void check_step(const Step &s) {
  if (s.ok) {
    check(s.reply.empty(), "successful step with an error reply");
    return;
  }
  check(!s.reason.empty(), "refusal without a reason");
  check(s.reason.find('\n') == std::string::npos, "multi-line refusal", s.reason);
  if (!s.reply.empty()) {
    std::string why;
    check(Handshake::parse_error(body_of(s.reply), &why), "refusal reply is not an ERROR frame");
    check(why.size() <= 512, "ERROR reason longer than 512 bytes");
  }
}

void parsers(std::string_view body) {
  std::string name, why;
  Handshake::peek_env_name(body, &name);
  if (Handshake::parse_error(body, &why)) {
    check(why.size() <= 512, "parsed ERROR reason longer than 512 bytes");
    for (unsigned char c : why) check(c >= 0x20 && c != 0x7f, "control byte in a peer's reason");
  }
  // error_frame accepts any reason, and what it builds parses back.
  std::string again;
  check(Handshake::parse_error(body_of(Handshake::error_frame(body)), &again),
        "error_frame output does not parse");
}

void hello_consistent(Handshake &h, std::string_view hello, const Step &s) {
  std::string name;
  bool peeked = Handshake::peek_env_name(hello, &name);
  if (s.ok) {
    check(peeked, "on_hello accepted what peek_env_name refuses");
    check(name == h.peer_hello().env_name, "peek_env_name and on_hello disagree on the name");
  }
}

void as_acceptor(unsigned flags, fuzz::Cursor &in) {
  Handshake acc(params(false, flags & 4, flags & 2));
  std::string_view hello = in.piece();
  Step s = acc.on_hello(hello);
  check_step(s);
  hello_consistent(acc, hello, s);
  if (flags & 1) {
    acc.set_local_node(0x04050600);
    check(!acc.hello_frame().empty(), "acceptor has no HELLO");
  }
  std::string_view auth = in.rest();
  Step a = acc.on_auth(auth);
  check_step(a);
  // Forging the keyed hash would take the secret and the session transcript.
  check(!a.ok, "acceptor accepted a forged AUTH");
  check(acc.take_channel() == nullptr, "channel without a handshake");
  parsers(hello);
  parsers(auth);
}

void as_initiator(unsigned flags, fuzz::Cursor &in) {
  Handshake ini(params(true, flags & 4, flags & 2));
  if (!(flags & 8)) check(!ini.hello_frame().empty(), "initiator has no HELLO");
  std::string_view hello = in.piece();
  Step s = ini.on_hello(hello);
  check_step(s);
  hello_consistent(ini, hello, s);
  if (s.ok && (flags & 1)) ini.auth_frame();
  std::string_view auth = in.rest();
  Step a = ini.on_auth(auth);
  check_step(a);
  check(!a.ok, "initiator accepted a forged AUTH");
  parsers(hello);
  parsers(auth);
}

struct Pair {
  std::unique_ptr<SecureChannel> ini, acc;
};

// A handshake as two replicators run it, bytes passed in memory.
Pair connect(bool secret) {
  Handshake ini(params(true, secret, true)), acc(params(false, secret, true));
  auto step = [](Handshake &h, std::string frame, bool hello) {
    Step s = hello ? h.on_hello(body_of(frame)) : h.on_auth(body_of(frame));
    check(s.ok, "genuine handshake refused", s.reason);
  };
  step(acc, ini.hello_frame(), true);
  step(ini, acc.hello_frame(), true);
  step(acc, ini.auth_frame(), false);
  step(ini, acc.auth_frame(), false);
  Pair p{ini.take_channel(), acc.take_channel()};
  check(p.ini && p.acc, "no channel after a genuine handshake");
  return p;
}

std::string sealed(SecureChannel &ch, std::string_view plaintext) {
  std::string frame;
  ch.seal(plaintext, &frame);
  return body_of(frame);
}

void garbage_frames(unsigned flags, fuzz::Cursor &in) {
  Pair p = connect(flags & 4);
  std::string plain;
  check(p.acc->open(sealed(*p.ini, "first"), &plain) && plain == "first", "genuine frame refused");
  bool any = false;
  while (!in.empty()) {
    std::string_view body = in.piece();
    plain = "stale";
    check(!p.acc->open(body, &plain), "a frame the peer never sealed opened", fuzz::hex(body));
    check(plain.empty() || plain == "stale", "refused frame left plaintext behind");
    any = true;
  }
  if (any) {
    check(!p.acc->open(sealed(*p.ini, "later"), &plain), "channel still open after a bad frame");
  }
}

void tampered_frame(unsigned flags, fuzz::Cursor &in) {
  Pair p = connect(flags & 4);
  std::string_view plaintext = in.piece();
  std::string_view mask = in.rest();
  std::string body = sealed(*p.ini, plaintext);
  std::string bad = body;
  for (std::size_t i = 0; i < mask.size(); ++i) {
    if (i < bad.size()) {
      bad[i] = static_cast<char>(bad[i] ^ mask[i]);
    } else {
      bad.push_back(mask[i]);
    }
  }
  if (flags & 1) bad.resize(std::min(bad.size(), mask.size()));
  std::string plain;
  bool opened = p.acc->open(bad, &plain);
  check(opened == (bad == body), "altered frame opened, or genuine frame refused", fuzz::hex(bad));
  if (opened) {
    check(plain == plaintext, "opened to a different plaintext");
    check(!p.acc->open(body, &plain), "replayed frame opened");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, std::size_t size) {
  fuzz::Cursor in(data, size);
  uint8_t ctl = in.byte();
  unsigned flags = ctl >> 2;
  switch (ctl & 3) {
    case 0:
      as_acceptor(flags, in);
      break;
    case 1:
      as_initiator(flags, in);
      break;
    case 2:
      garbage_frames(flags, in);
      break;
    case 3:
      tampered_frame(flags, in);
      break;
  }
  parsers(std::string_view(reinterpret_cast<const char *>(data), size));
  return 0;
}
