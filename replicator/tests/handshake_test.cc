// The authenticated handshake and the encrypted session, driven in memory:
// two Handshake objects pass frames to each other as peer.cc would.
#include "handshake.h"

#include <gtest/gtest.h>

#include "wire.h"

namespace trlmdb::repl {
namespace {

constexpr uint64_t kSecond = 1ull << 32;

// Test clocks: plain functions, as Params::wall_now wants.
uint64_t g_clock_a = 1700000000ull * kSecond;
uint64_t g_clock_b = 1700000000ull * kSecond;
uint64_t clock_a() { return g_clock_a; }
uint64_t clock_b() { return g_clock_b; }

// The body of a single complete frame.
std::string body_of(const std::string &frame) {
  FrameReader r(kMaxHandshakeMessage);
  r.feed(frame.data(), frame.size());
  std::string body, error;
  EXPECT_EQ(r.next(&body, &error), 1) << error;
  EXPECT_EQ(r.buffered(), 0u) << "more than one frame";
  return body;
}

Handshake::Params params(bool initiator, std::string secret = "s3cret",
                         std::string cluster = "trlmdb") {
  Handshake::Params p;
  p.initiator = initiator;
  p.secret = std::move(secret);
  p.cluster = std::move(cluster);
  p.env_name = initiator ? "mydb" : "";
  p.node = initiator ? 0x11223300 : 0;
  p.max_skew = 60 * kSecond;
  p.wall_now = initiator ? clock_a : clock_b;
  return p;
}

struct Outcome {
  Step acceptor_hello;   // acceptor's on_hello(initiator HELLO)
  Step initiator_hello;  // initiator's on_hello(acceptor HELLO)
  Step acceptor_auth;    // acceptor's on_auth(initiator AUTH)
  Step initiator_auth;   // initiator's on_auth(acceptor AUTH or ERROR)
  bool reached_auth = false;
};

// Runs the sequence of handshake.h, stopping at the first refusal; a refusal
// with a reply is delivered to the other side as the next frame it expects.
Outcome run(Handshake &ini, Handshake &acc) {
  Outcome o;
  o.acceptor_hello = acc.on_hello(body_of(ini.hello_frame()));
  if (!o.acceptor_hello.ok) {
    o.initiator_hello = ini.on_hello(body_of(o.acceptor_hello.reply));
    return o;
  }
  EXPECT_EQ(acc.peer_hello().env_name, "mydb");
  acc.set_local_node(0x44556600);
  o.initiator_hello = ini.on_hello(body_of(acc.hello_frame()));
  if (!o.initiator_hello.ok) {
    o.acceptor_auth = acc.on_auth(body_of(o.initiator_hello.reply));
    return o;
  }
  o.reached_auth = true;
  o.acceptor_auth = acc.on_auth(body_of(ini.auth_frame()));
  if (!o.acceptor_auth.ok) {
    o.initiator_auth = ini.on_auth(body_of(o.acceptor_auth.reply));
    return o;
  }
  o.initiator_auth = ini.on_auth(body_of(acc.auth_frame()));
  return o;
}

// Seals `msg` on one side and opens it on the other.
void expect_carries(SecureChannel &from, SecureChannel &to, const std::string &msg) {
  std::string frame;
  from.seal(msg, &frame);
  EXPECT_EQ(frame.size(), 4 + msg.size() + SecureChannel::kOverhead);
  FrameReader r(kMaxMessage + SecureChannel::kOverhead);
  r.feed(frame.data(), frame.size());
  std::string body, error, plain;
  ASSERT_EQ(r.next(&body, &error), 1);
  if (msg.size() >= 8) {
    EXPECT_EQ(body.find(msg), std::string::npos) << "plaintext visible on the wire";
  }
  ASSERT_TRUE(to.open(body, &plain));
  EXPECT_EQ(plain, msg);
}

struct Session {
  std::unique_ptr<SecureChannel> ini, acc;
};

Session connect(const std::string &secret = "s3cret") {
  Handshake ini(params(true, secret)), acc(params(false, secret));
  Outcome o = run(ini, acc);
  EXPECT_TRUE(o.acceptor_hello.ok) << o.acceptor_hello.reason;
  EXPECT_TRUE(o.initiator_hello.ok) << o.initiator_hello.reason;
  EXPECT_TRUE(o.acceptor_auth.ok) << o.acceptor_auth.reason;
  EXPECT_TRUE(o.initiator_auth.ok) << o.initiator_auth.reason;
  Session s{ini.take_channel(), acc.take_channel()};
  EXPECT_TRUE(s.ini && s.acc);
  return s;
}

TEST(Handshake, SameSecretSucceedsAndCarriesMessagesBothWays) {
  Handshake ini(params(true)), acc(params(false));
  Outcome o = run(ini, acc);
  ASSERT_TRUE(o.acceptor_auth.ok) << o.acceptor_auth.reason;
  ASSERT_TRUE(o.initiator_auth.ok) << o.initiator_auth.reason;
  EXPECT_TRUE(o.acceptor_auth.reply.empty());
  EXPECT_EQ(acc.peer_hello().node, 0x11223300u);
  EXPECT_EQ(ini.peer_hello().node, 0x44556600u);
  EXPECT_EQ(ini.peer_hello().version, kProtocolVersion);
  EXPECT_EQ(ini.peer_hello().cluster, "trlmdb");
  EXPECT_EQ(ini.peer_hello().wall, g_clock_b);
  auto a = ini.take_channel(), b = acc.take_channel();
  ASSERT_TRUE(a && b);
  EXPECT_FALSE(ini.take_channel()) << "the channel is handed out once";
  for (int i = 0; i < 20; ++i) {
    expect_carries(*a, *b, "to acceptor " + std::to_string(i));
    expect_carries(*b, *a, "to initiator " + std::to_string(i));
  }
  expect_carries(*a, *b, "");
  expect_carries(*b, *a, std::string(1 << 20, 'z'));
}

TEST(Handshake, DirectionsUseDifferentKeys) {
  Session s = connect();
  // A frame sealed by the initiator is not accepted back by the initiator.
  std::string frame, plain;
  s.ini->seal("echo", &frame);
  EXPECT_FALSE(s.ini->open(std::string_view(frame).substr(4), &plain));
}

TEST(Handshake, EmptySecretOnBothSidesWorks) {
  Session s = connect("");
  expect_carries(*s.ini, *s.acc, "hello");
  expect_carries(*s.acc, *s.ini, "world");
}

TEST(Handshake, WrongSecretRefusedOnBothSides) {
  Handshake ini(params(true, "secret-one")), acc(params(false, "secret-two"));
  Outcome o = run(ini, acc);
  ASSERT_TRUE(o.reached_auth) << "hellos carry no secret-dependent checks";
  EXPECT_FALSE(o.acceptor_auth.ok);
  EXPECT_EQ(o.acceptor_auth.reason,
            "authentication failed: the peer does not know this cluster's secret");
  std::string told;
  ASSERT_TRUE(Handshake::parse_error(body_of(o.acceptor_auth.reply), &told));
  EXPECT_EQ(told, "authentication failed: wrong cluster secret?");
  EXPECT_FALSE(o.initiator_auth.ok);
  EXPECT_NE(o.initiator_auth.reason.find("authentication failed: wrong cluster secret?"),
            std::string::npos)
      << o.initiator_auth.reason;
  EXPECT_FALSE(ini.take_channel());
  EXPECT_FALSE(acc.take_channel());
}

// An acceptor without the secret that answers with an AUTH anyway (instead
// of an ERROR) is refused by the initiator itself.
TEST(Handshake, InitiatorChecksAcceptorTag) {
  Handshake ini(params(true, "right")), acc(params(false, "wrong"));
  ASSERT_TRUE(acc.on_hello(body_of(ini.hello_frame())).ok);
  ASSERT_TRUE(ini.on_hello(body_of(acc.hello_frame())).ok);
  std::string ini_auth = ini.auth_frame();
  ASSERT_FALSE(ini_auth.empty());
  Step s = ini.on_auth(body_of(acc.auth_frame()));
  EXPECT_FALSE(s.ok);
  EXPECT_EQ(s.reason, "authentication failed: the peer does not know this cluster's secret");
  std::string told;
  EXPECT_TRUE(Handshake::parse_error(body_of(s.reply), &told));
  EXPECT_FALSE(ini.take_channel());
}

// A man in the middle replaying the initiator's own AUTH back to it must not
// pass: the tags are bound to the role.
TEST(Handshake, ReflectedAuthRefused) {
  Handshake ini(params(true)), acc(params(false));
  ASSERT_TRUE(acc.on_hello(body_of(ini.hello_frame())).ok);
  ASSERT_TRUE(ini.on_hello(body_of(acc.hello_frame())).ok);
  Step s = ini.on_auth(body_of(ini.auth_frame()));
  EXPECT_FALSE(s.ok);
}

// AUTH from one session does not authenticate another (fresh ephemeral keys
// and nonces make each transcript unique).
TEST(Handshake, AuthFromAnotherSessionRefused) {
  Handshake ini1(params(true)), acc1(params(false));
  ASSERT_TRUE(run(ini1, acc1).initiator_auth.ok);
  std::string old_auth = body_of(ini1.auth_frame());
  Handshake ini2(params(true)), acc2(params(false));
  ASSERT_TRUE(acc2.on_hello(body_of(ini2.hello_frame())).ok);
  ASSERT_TRUE(ini2.on_hello(body_of(acc2.hello_frame())).ok);
  Step s = acc2.on_auth(old_auth);
  EXPECT_FALSE(s.ok);
  EXPECT_EQ(s.reason, "authentication failed: the peer does not know this cluster's secret");
}

// An eavesdropper who recorded a whole successful handshake cannot replay
// it: the acceptor's fresh key and nonce change the transcript.
TEST(Handshake, ReplayedHandshakeRefused) {
  Handshake ini1(params(true)), acc1(params(false));
  const std::string hello = body_of(ini1.hello_frame());
  ASSERT_TRUE(acc1.on_hello(hello).ok);
  acc1.set_local_node(0x44556600);
  ASSERT_TRUE(ini1.on_hello(body_of(acc1.hello_frame())).ok);
  const std::string auth = body_of(ini1.auth_frame());
  ASSERT_TRUE(acc1.on_auth(auth).ok);

  Handshake acc2(params(false));
  ASSERT_TRUE(acc2.on_hello(hello).ok);  // a hello alone proves nothing
  acc2.set_local_node(0x44556600);
  acc2.hello_frame();
  Step s = acc2.on_auth(auth);
  EXPECT_FALSE(s.ok);
  EXPECT_EQ(acc2.take_channel(), nullptr);
}

// A hello changed in transit (here the node word) makes the two sides'
// transcripts differ, so authentication fails: a man in the middle cannot
// alter what a peer announces.
TEST(Handshake, TamperedHelloRefused) {
  for (bool tamper_initiator : {true, false}) {
    Handshake ini(params(true)), acc(params(false));
    std::string ih = body_of(ini.hello_frame());
    if (tamper_initiator) ih[ih.size() - 32 - 32 - 8 - 3] ^= 0x01;  // a node word byte
    ASSERT_TRUE(acc.on_hello(ih).ok);
    EXPECT_EQ(acc.peer_hello().node != 0x11223300u, tamper_initiator) << "the node word changed";
    acc.set_local_node(0x44556600);
    std::string ah = body_of(acc.hello_frame());
    if (!tamper_initiator) ah[ah.size() - 32 - 32 - 8 - 3] ^= 0x01;
    ASSERT_TRUE(ini.on_hello(ah).ok);
    Step s = acc.on_auth(body_of(ini.auth_frame()));
    EXPECT_FALSE(s.ok) << "tampered " << (tamper_initiator ? "initiator" : "acceptor") << " hello";
  }
}

TEST(Handshake, DifferentClusterRefused) {
  Handshake ini(params(true, "s", "alpha")), acc(params(false, "s", "beta"));
  Outcome o = run(ini, acc);
  EXPECT_FALSE(o.acceptor_hello.ok);
  EXPECT_EQ(o.acceptor_hello.reason, "cluster \"alpha\" != \"beta\"");
  EXPECT_FALSE(o.initiator_hello.ok) << "the initiator learns why";
  EXPECT_NE(o.initiator_hello.reason.find("cluster \"alpha\" != \"beta\""), std::string::npos)
      << o.initiator_hello.reason;
}

TEST(Handshake, VersionMismatchRefused) {
  Handshake ini(params(true)), acc(params(false));
  std::string body = body_of(ini.hello_frame());
  // Layout: 'H', "TRLM", version (2 bytes little-endian), ...
  ASSERT_EQ(body.substr(1, 4), "TRLM");
  ASSERT_EQ(body[5], static_cast<char>(kProtocolVersion));
  body[5] = 7;
  Step s = acc.on_hello(body);
  EXPECT_FALSE(s.ok);
  EXPECT_EQ(s.reason, "protocol version 7 is not supported (this node speaks 1)");
  std::string told;
  ASSERT_TRUE(Handshake::parse_error(body_of(s.reply), &told));
  EXPECT_EQ(told, s.reason);
}

TEST(Handshake, BadMagicAndMalformedHellosRefused) {
  std::string good;
  {
    Handshake ini(params(true));
    good = body_of(ini.hello_frame());
  }
  std::string bad = good;
  bad[1] = 'X';
  Handshake acc(params(false));
  Step s = acc.on_hello(bad);
  EXPECT_FALSE(s.ok);
  EXPECT_NE(s.reason.find("magic"), std::string::npos) << s.reason;
  EXPECT_FALSE(s.reply.empty());

  for (std::size_t n = 0; n < good.size(); ++n) {
    Handshake a(params(false));
    Step t = a.on_hello(std::string_view(good).substr(0, n));
    EXPECT_FALSE(t.ok) << "truncated at " << n;
    EXPECT_FALSE(t.reply.empty());
  }
  Handshake a(params(false));
  EXPECT_FALSE(a.on_hello(good + "x").ok) << "trailing byte";
  Handshake b(params(false));
  std::string huge = good;
  huge.resize(kMaxHandshakeMessage + 1);
  EXPECT_FALSE(b.on_hello(huge).ok);
  Handshake c(params(false));
  EXPECT_FALSE(c.on_hello(std::string("A") + good.substr(1)).ok) << "AUTH in place of HELLO";
  std::string long_name(1100, 'n');
  Handshake li(params(true, "s", long_name)), la(params(false, "s", long_name));
  Step l = la.on_hello(body_of(li.hello_frame()));
  EXPECT_FALSE(l.ok);
  EXPECT_EQ(l.reason, "HELLO cluster name longer than 1024 bytes");
}

TEST(Handshake, ClockSkew) {
  // 93.2 s apart with 60 s allowed: refused, on the side that checks.
  g_clock_a = 1700000000ull * kSecond;
  g_clock_b = g_clock_a + 93 * kSecond + kSecond / 5;
  {
    Handshake ini(params(true)), acc(params(false));
    Outcome o = run(ini, acc);
    EXPECT_FALSE(o.acceptor_hello.ok);
    EXPECT_EQ(o.acceptor_hello.reason, "wall clocks differ by 93.2 s, more than the allowed 60 s");
    EXPECT_FALSE(o.initiator_hello.ok);
  }
  // The initiator ahead: refused too (the difference is absolute).
  std::swap(g_clock_a, g_clock_b);
  {
    Handshake ini(params(true)), acc(params(false));
    EXPECT_FALSE(run(ini, acc).acceptor_hello.ok);
  }
  // 59 s apart: accepted.
  g_clock_b = g_clock_a + 59 * kSecond;
  {
    Handshake ini(params(true)), acc(params(false));
    Outcome o = run(ini, acc);
    EXPECT_TRUE(o.initiator_auth.ok) << o.acceptor_hello.reason << o.initiator_hello.reason;
  }
  // max_skew 0: unchecked.
  g_clock_b = g_clock_a + 100000 * kSecond;
  {
    auto pi = params(true), pa = params(false);
    pi.max_skew = pa.max_skew = 0;
    Handshake ini(pi), acc(pa);
    EXPECT_TRUE(run(ini, acc).initiator_auth.ok);
  }
  g_clock_b = g_clock_a;
}

TEST(Handshake, DefaultClockIsTheWallClock) {
  auto pi = params(true), pa = params(false);
  pi.wall_now = pa.wall_now = nullptr;
  pi.max_skew = pa.max_skew = 5 * kSecond;
  Handshake ini(pi), acc(pa);
  Outcome o = run(ini, acc);
  EXPECT_TRUE(o.initiator_auth.ok) << o.acceptor_hello.reason;
  // Against the fixed 2023 test clock the real one is far off.
  Handshake stale(params(true)), acc2(pa);
  EXPECT_FALSE(acc2.on_hello(body_of(stale.hello_frame())).ok);
}

TEST(Handshake, ErrorFrames) {
  std::string frame = Handshake::error_frame("no environment \"x\" here");
  std::string body = body_of(frame);
  std::string reason;
  ASSERT_TRUE(Handshake::parse_error(body, &reason));
  EXPECT_EQ(reason, "no environment \"x\" here");
  // HELLO and AUTH bodies are not errors.
  Handshake ini(params(true)), acc(params(false));
  EXPECT_FALSE(Handshake::parse_error(body_of(ini.hello_frame()), &reason));
  ASSERT_TRUE(acc.on_hello(body_of(ini.hello_frame())).ok);
  ASSERT_TRUE(ini.on_hello(body_of(acc.hello_frame())).ok);
  EXPECT_FALSE(Handshake::parse_error(body_of(ini.auth_frame()), &reason));
  // The peer's text reaches logs as one bounded line.
  ASSERT_TRUE(Handshake::parse_error(body_of(Handshake::error_frame("two\nlines")), &reason));
  EXPECT_EQ(reason.find('\n'), std::string::npos);
  ASSERT_TRUE(
      Handshake::parse_error(body_of(Handshake::error_frame(std::string(2000, 'e'))), &reason));
  EXPECT_LE(reason.size(), 512u);
  // An acceptor refusing the environment: the initiator's on_hello says why.
  Handshake ini2(params(true));
  ini2.hello_frame();
  Step s = ini2.on_hello(body);
  EXPECT_FALSE(s.ok);
  EXPECT_NE(s.reason.find("no environment \"x\" here"), std::string::npos) << s.reason;
  EXPECT_TRUE(s.reply.empty()) << "no reply to a refusal";
}

TEST(SecureChannel, TamperedFrameRejected) {
  Session s = connect();
  std::string frame, plain;
  s.ini->seal("important message", &frame);
  std::string body = frame.substr(4);
  for (std::size_t i = 0; i < body.size(); i += 5) {
    Session t = connect();
    std::string f;
    t.ini->seal("important message", &f);
    std::string b = f.substr(4);
    b[i] ^= 0x01;
    EXPECT_FALSE(t.acc->open(b, &plain)) << "byte " << i;
  }
  // Truncated bodies, too.
  EXPECT_FALSE(s.acc->open(std::string_view(body).substr(0, body.size() - 1), &plain));
}

TEST(SecureChannel, ReplayedFrameRejected) {
  Session s = connect();
  std::string f1, plain;
  s.ini->seal("pay 10", &f1);
  ASSERT_TRUE(s.acc->open(f1.substr(4), &plain));
  EXPECT_FALSE(s.acc->open(f1.substr(4), &plain));
}

TEST(SecureChannel, DroppedFrameRejected) {
  Session s = connect();
  std::string f1, f2, plain;
  s.ini->seal("one", &f1);
  s.ini->seal("two", &f2);
  EXPECT_FALSE(s.acc->open(f2.substr(4), &plain)) << "frame one was dropped";
}

TEST(SecureChannel, ReorderedFramesRejected) {
  Session s = connect();
  std::string f1, f2, plain;
  s.ini->seal("one", &f1);
  s.ini->seal("two", &f2);
  EXPECT_FALSE(s.acc->open(f2.substr(4), &plain));
  EXPECT_FALSE(s.acc->open(f1.substr(4), &plain)) << "a failed stream stays failed";
}

TEST(SecureChannel, OtherSessionsFramesRejected) {
  Session s1 = connect(), s2 = connect();
  std::string f, plain;
  s1.ini->seal("hello", &f);
  EXPECT_FALSE(s2.acc->open(f.substr(4), &plain));
}

}  // namespace
}  // namespace trlmdb::repl
