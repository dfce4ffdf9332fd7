// The protocol's message codec: round trips, and a decoder that refuses
// every malformed input with one line instead of reading past it.
#include "wire.h"

#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <random>

namespace trlmdb::repl {
namespace {

Ts put_ts(uint64_t time, uint32_t node = 0x0a0b0c00) { return Ts{time, node | kOpPut}; }
Ts del_ts(uint64_t time, uint32_t node = 0x0a0b0c00) { return Ts{time, node | kOpDelete}; }

Change change(std::string_view db, std::string_view key, Ts ts, std::vector<std::string> values,
              uint32_t flags = 0) {
  Change c;
  c.xkey = make_xkey(db, key);
  c.ts = ts;
  c.db_flags = flags;
  c.values = std::move(values);
  return c;
}

ChangesMsg sample_changes() {
  ChangesMsg m;
  m.seq = 300;  // two varint bytes
  m.changes.push_back(change("", "k1", put_ts(0x1234567890abcdefull), {"v1"}));
  m.changes.push_back(change("dups", "k2", put_ts(5), {"a", "b", std::string(200, 'c')}, 0x04));
  m.changes.push_back(change("db", "gone", del_ts(7), {}));
  m.changes.push_back(change("newdb", "", put_ts(9), {}, 0x08));
  m.changes.push_back(change("", std::string("bin\0key", 7), put_ts(11), {std::string(1, '\0')}));
  return m;
}

void expect_one_line(const std::string &error) {
  EXPECT_FALSE(error.empty());
  EXPECT_EQ(error.find('\n'), std::string::npos) << error;
}

// Decoding must fail, with a reason containing `needle`.
void expect_reject(std::string_view bytes, std::string_view needle) {
  Message m;
  std::string error;
  EXPECT_FALSE(decode_message(bytes, &m, &error)) << "accepted; wanted: " << needle;
  expect_one_line(error);
  EXPECT_NE(error.find(needle), std::string::npos) << "error: " << error << "; wanted: " << needle;
}

Message decode_ok(std::string_view bytes) {
  Message m;
  std::string error;
  EXPECT_TRUE(decode_message(bytes, &m, &error)) << error;
  return m;
}

// A Changes message with one hand-built entry, to reach individual checks.
std::string raw_changes(std::string_view xkey, Ts ts, std::vector<std::string> values,
                        uint64_t flags = 0) {
  std::string out(1, static_cast<char>(MsgType::kChanges));
  put_varint(&out, 1);  // seq
  put_varint(&out, 1);  // count
  put_varint(&out, xkey.size());
  out.append(xkey);
  unsigned char t[kTsSize];
  encode_ts(ts, t);
  out.append(reinterpret_cast<const char *>(t), kTsSize);
  put_varint(&out, flags);
  put_varint(&out, values.size());
  for (auto &v : values) {
    put_varint(&out, v.size());
    out.append(v);
  }
  return out;
}

TEST(Varint, RoundTripsBoundaries) {
  for (uint64_t v :
       {0ull, 1ull, 127ull, 128ull, 16383ull, 16384ull, (1ull << 32) - 1, (1ull << 63), ~0ull}) {
    std::string s;
    put_varint(&s, v);
    auto *p = reinterpret_cast<const unsigned char *>(s.data());
    uint64_t got = 0;
    ASSERT_TRUE(get_varint(&p, p + s.size(), &got)) << v;
    EXPECT_EQ(got, v);
    EXPECT_EQ(p, reinterpret_cast<const unsigned char *>(s.data()) + s.size());
  }
  std::string max;
  put_varint(&max, ~0ull);
  EXPECT_EQ(max.size(), 10u);
}

TEST(Varint, RejectsTruncatedAndOverlong) {
  std::string s;
  put_varint(&s, 1ull << 40);
  for (std::size_t n = 0; n < s.size(); ++n) {
    auto *p = reinterpret_cast<const unsigned char *>(s.data());
    uint64_t v = 0;
    EXPECT_FALSE(get_varint(&p, p + n, &v)) << n;
    EXPECT_EQ(p, reinterpret_cast<const unsigned char *>(s.data())) << "advanced on failure";
  }
  std::string eleven(10, '\x80');
  eleven.push_back('\x01');
  auto *p = reinterpret_cast<const unsigned char *>(eleven.data());
  uint64_t v = 0;
  EXPECT_FALSE(get_varint(&p, p + eleven.size(), &v));
  // Ten bytes whose last one carries bits beyond 64.
  std::string overflow(9, '\xff');
  overflow.push_back('\x02');
  p = reinterpret_cast<const unsigned char *>(overflow.data());
  EXPECT_FALSE(get_varint(&p, p + overflow.size(), &v));
}

TEST(Wire, ChangesRoundTrip) {
  ChangesMsg m = sample_changes();
  std::string bytes;
  encode_changes(m, &bytes);
  Message d = decode_ok(bytes);
  ASSERT_EQ(d.type, MsgType::kChanges);
  EXPECT_EQ(d.changes.seq, m.seq);
  EXPECT_EQ(d.changes.changes, m.changes);
  EXPECT_EQ(d.changes.changes[1].values.size(), 3u);
  EXPECT_EQ(d.changes.changes[1].db_flags, 0x04u);
}

TEST(Wire, EmptyChangesRoundTrip) {
  std::string bytes;
  encode_changes(ChangesMsg{}, &bytes);
  Message d = decode_ok(bytes);
  EXPECT_EQ(d.type, MsgType::kChanges);
  EXPECT_EQ(d.changes.seq, 0u);
  EXPECT_TRUE(d.changes.changes.empty());
}

TEST(Wire, SixteenMiBValueAndLargeDupSet) {
  ChangesMsg m;
  m.seq = 1;
  std::string big(16u << 20, '\0');
  for (std::size_t i = 0; i < big.size(); i += 4093) big[i] = static_cast<char>(i * 31);
  m.changes.push_back(change("", "big", put_ts(1), {big}));
  std::vector<std::string> dups;
  for (int i = 0; i < 1000; ++i) dups.push_back("dup" + std::to_string(100000 + i));
  m.changes.push_back(change("d", "k", put_ts(2), dups, 0x04 | 0x10));
  std::string bytes;
  encode_changes(m, &bytes);
  EXPECT_LT(bytes.size(), kMaxMessage);
  Message d = decode_ok(bytes);
  ASSERT_EQ(d.changes.changes.size(), 2u);
  EXPECT_TRUE(d.changes.changes[0].values[0] == big);
  EXPECT_EQ(d.changes.changes[1].values, dups);
  EXPECT_EQ(d.changes.changes[0].payload_bytes(), 4u + 12u + big.size());
}

TEST(Wire, OtherTypesRoundTrip) {
  std::string b;
  encode_ack(AckMsg{1ull << 50}, &b);
  Message d = decode_ok(b);
  EXPECT_EQ(d.type, MsgType::kAck);
  EXPECT_EQ(d.ack.seq, 1ull << 50);

  for (MsgType t : {MsgType::kPing, MsgType::kPong}) {
    b.clear();
    encode_ping(t, PingMsg{0x0102030405060708ull}, &b);
    EXPECT_EQ(b.size(), 9u);
    EXPECT_EQ(b[1], 0x08) << "token is little-endian";
    d = decode_ok(b);
    EXPECT_EQ(d.type, t);
    EXPECT_EQ(d.ping.token, 0x0102030405060708ull);
  }

  b.clear();
  encode_error(ErrorMsg{"database \"x\" has conflicting flags"}, &b);
  d = decode_ok(b);
  EXPECT_EQ(d.type, MsgType::kError);
  EXPECT_EQ(d.error.reason, "database \"x\" has conflicting flags");

  // An over-long reason is shortened so that it still decodes.
  b.clear();
  encode_error(ErrorMsg{std::string(600, 'e')}, &b);
  d = decode_ok(b);
  EXPECT_EQ(d.error.reason, std::string(512, 'e'));

  for (std::string payload : {std::string(), std::string("\x00\x01\xff recon", 10)}) {
    b.clear();
    encode_recon(payload, &b);
    d = decode_ok(b);
    EXPECT_EQ(d.type, MsgType::kRecon);
    EXPECT_EQ(d.recon, payload);
  }

  b.clear();
  encode_catchup_done(&b);
  EXPECT_EQ(b.size(), 1u);
  d = decode_ok(b);
  EXPECT_EQ(d.type, MsgType::kCatchupDone);

  for (std::vector<uint32_t> nodes :
       {std::vector<uint32_t>{}, std::vector<uint32_t>{0x12345600u, 0xabcdef00u}}) {
    b.clear();
    encode_peers(PeersMsg{nodes}, &b);
    d = decode_ok(b);
    EXPECT_EQ(d.type, MsgType::kPeers);
    EXPECT_EQ(d.peers.nodes, nodes);
  }
}

TEST(WireReject, PeersCountMustMatch) {
  std::string b;
  encode_peers(PeersMsg{{1u << 8, 2u << 8}}, &b);
  Message m;
  std::string err;
  EXPECT_FALSE(decode_message(b.substr(0, b.size() - 1), &m, &err));
  EXPECT_FALSE(decode_message(b + "x", &m, &err));
  std::string many(1, static_cast<char>(MsgType::kPeers));
  put_varint(&many, kMaxPeers + 1);
  many.append((kMaxPeers + 1) * 4, '\0');
  EXPECT_FALSE(decode_message(many, &m, &err));
  EXPECT_NE(err.find("1024"), std::string::npos) << err;
}

TEST(Wire, EncodersAppend) {
  std::string b = "prefix";
  encode_ack(AckMsg{3}, &b);
  EXPECT_EQ(b.substr(0, 6), "prefix");
  EXPECT_EQ(decode_ok(std::string_view(b).substr(6)).ack.seq, 3u);
}

TEST(WireReject, ChangesTruncatedAtEveryOffset) {
  std::string bytes;
  encode_changes(sample_changes(), &bytes);
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    Message m;
    std::string error;
    EXPECT_FALSE(decode_message(std::string_view(bytes).substr(0, n), &m, &error)) << n;
    expect_one_line(error);
  }
  // A full copy in a buffer of exactly its size (checked under ASan) decodes.
  decode_ok(bytes);
}

TEST(WireReject, OtherTypesTruncated) {
  std::string b;
  encode_ack(AckMsg{1ull << 40}, &b);
  expect_reject(std::string_view(b).substr(0, b.size() - 1), "ack");
  b.clear();
  encode_ping(MsgType::kPing, PingMsg{1}, &b);
  expect_reject(std::string_view(b).substr(0, 8), "ping");
  b.clear();
  encode_error(ErrorMsg{"why"}, &b);
  expect_reject(std::string_view(b).substr(0, b.size() - 1), "error");
  expect_reject("", "empty");
}

TEST(WireReject, OverlongVarint) {
  std::string b(1, static_cast<char>(MsgType::kAck));
  b.append(10, '\x80');
  b.push_back('\x00');
  expect_reject(b, "ack: truncated seq");
  std::string c(1, static_cast<char>(MsgType::kChanges));
  c.append(11, '\xff');
  expect_reject(c, "changes: truncated seq");
}

// What a message can make the receiver allocate is bounded, not only its
// byte size: every change and every value costs an object of its own.
TEST(WireReject, TooManyChangesOrValues) {
  ChangesMsg m;
  m.changes.push_back(change("d", "k", put_ts(1), {}));
  m.changes[0].values.assign(kMaxValuesPerMessage + 1, std::string());
  std::string b;
  encode_changes(m, &b);
  expect_reject(b, "more values in the message than the limit");
  m.changes[0].values.resize(kMaxValuesPerMessage);
  b.clear();
  encode_changes(m, &b);
  decode_ok(b);

  ChangesMsg many;
  for (std::size_t i = 0; i <= kMaxChangesPerMessage; ++i)
    many.changes.push_back(change("", "k" + std::to_string(i), put_ts(1), {"v"}));
  b.clear();
  encode_changes(many, &b);
  expect_reject(b, "more than 65536");
  many.changes.pop_back();
  b.clear();
  encode_changes(many, &b);
  decode_ok(b);
}

TEST(WireReject, CountLargerThanInput) {
  std::string b(1, static_cast<char>(MsgType::kChanges));
  put_varint(&b, 1);
  put_varint(&b, 1000000000000ull);
  b.append(100, 'x');
  expect_reject(b, "count larger than the message");

  // Two entries' worth of bytes announced as three.
  ChangesMsg m;
  m.changes.push_back(change("", "a", put_ts(1), {"1"}));
  m.changes.push_back(change("", "b", put_ts(1), {"2"}));
  std::string two;
  encode_changes(m, &two);
  two[2] = 3;  // count follows type and a one-byte seq
  expect_reject(two, "changes");

  // A value count beyond the remaining bytes.
  std::string v = raw_changes(make_xkey("", "k"), put_ts(1), {"x"});
  v[v.size() - 3] = 100;  // value count, before the one value's length and byte
  expect_reject(v, "value count larger than the message");
}

TEST(WireReject, BadTimestampOpByte) {
  expect_reject(raw_changes(make_xkey("", "k"), Ts{1, 0x0a0b0c02}, {"v"}),
                "changes: entry 0: timestamp op byte");
  expect_reject(raw_changes(make_xkey("", "k"), Ts{1, 0x0a0b0cff}, {"v"}), "op byte");
}

TEST(WireReject, XkeyChecks) {
  expect_reject(raw_changes("nonul", put_ts(1), {"v"}),
                "changes: entry 0: xkey without a database separator");
  std::string long_key = make_xkey("", std::string(511, 'k'));
  ASSERT_EQ(long_key.size(), 512u);
  expect_reject(raw_changes(long_key, put_ts(1), {"v"}), "xkey longer than 511 bytes");
  // 511 bytes exactly is fine.
  decode_ok(raw_changes(make_xkey("", std::string(510, 'k')), put_ts(1), {"v"}));
  expect_reject(raw_changes("", put_ts(1), {"v"}), "empty xkey");
}

TEST(WireReject, ValueRules) {
  expect_reject(raw_changes(make_xkey("db", "k"), del_ts(1), {"v"}), "delete with values");
  expect_reject(raw_changes(make_xkey("db", "k"), put_ts(1), {}), "put without a value");
  expect_reject(raw_changes(make_xkey("db", ""), put_ts(1), {"v"}), "marker with values");
  expect_reject(raw_changes(make_xkey("db", ""), del_ts(1), {"v"}), "delete with values");
  // The legal forms: an empty value, a marker, a deleted marker.
  decode_ok(raw_changes(make_xkey("db", "k"), put_ts(1), {""}));
  decode_ok(raw_changes(make_xkey("db", ""), put_ts(1), {}));
  decode_ok(raw_changes(make_xkey("db", ""), del_ts(1), {}));
}

TEST(WireReject, FlagsBeyond32Bits) {
  expect_reject(raw_changes(make_xkey("", "k"), put_ts(1), {"v"}, 1ull << 32), "flags");
}

TEST(WireReject, TrailingBytes) {
  std::vector<std::string> msgs(6);
  encode_changes(sample_changes(), &msgs[0]);
  encode_ack(AckMsg{1}, &msgs[1]);
  encode_ping(MsgType::kPong, PingMsg{1}, &msgs[2]);
  encode_error(ErrorMsg{"x"}, &msgs[3]);
  encode_catchup_done(&msgs[4]);
  msgs[5] = raw_changes(make_xkey("", "k"), put_ts(1), {"v"});
  for (auto &m : msgs) {
    decode_ok(m);
    expect_reject(m + std::string(1, '\0'), "trailing");
  }
}

TEST(WireReject, UnknownType) {
  for (int t : {0, 9, 0x41, 0xff}) expect_reject(std::string(1, static_cast<char>(t)), "unknown");
}

TEST(WireReject, ErrorTextTooLong) {
  std::string b(1, static_cast<char>(MsgType::kError));
  put_varint(&b, 513);
  b.append(513, 'e');
  expect_reject(b, "longer than 512");
  b.assign(1, static_cast<char>(MsgType::kError));
  put_varint(&b, 512);
  b.append(512, 'e');
  EXPECT_EQ(decode_ok(b).error.reason.size(), 512u);
}

TEST(WireReject, OversizedMessage) {
  std::string b(1, static_cast<char>(MsgType::kRecon));
  b.resize(kMaxMessage + 1, 'r');
  expect_reject(b, "larger than the maximum");
}

// Random inputs, and single-byte mutations of valid messages (which reach far
// deeper into the decoder), must never crash or read out of bounds.
TEST(WireFuzz, RandomBytesNeverCrash) {
  std::mt19937_64 rng(12345);
  std::vector<std::string> seeds(4);
  encode_changes(sample_changes(), &seeds[0]);
  encode_ack(AckMsg{77}, &seeds[1]);
  encode_error(ErrorMsg{"seed"}, &seeds[2]);
  encode_ping(MsgType::kPing, PingMsg{9}, &seeds[3]);
  int accepted = 0;
  for (int i = 0; i < 100000; ++i) {
    std::string s;
    if (i % 2 == 0) {
      std::size_t n = rng() % 64;
      for (std::size_t j = 0; j < n; ++j) s.push_back(static_cast<char>(rng()));
      if (!s.empty() && rng() % 2) s[0] = static_cast<char>(1 + rng() % 7);
    } else {
      s = seeds[rng() % seeds.size()];
      int edits = 1 + rng() % 3;
      for (int e = 0; e < edits; ++e) {
        std::size_t at = rng() % s.size();
        switch (rng() % 3) {
          case 0:
            s[at] = static_cast<char>(rng());
            break;
          case 1:
            s.erase(at, 1 + rng() % 4);
            break;
          default:
            s.insert(at, 1, static_cast<char>(rng()));
            break;
        }
        if (s.empty()) s.push_back('\x01');
      }
    }
    // Exact-size heap copy, so ASan sees any read past the end.
    std::unique_ptr<char[]> buf(new char[s.size() + 1]);
    std::memcpy(buf.get(), s.data(), s.size());
    Message m;
    std::string error;
    if (decode_message(std::string_view(buf.get(), s.size()), &m, &error)) {
      ++accepted;
    } else {
      ASSERT_FALSE(error.empty());
      ASSERT_EQ(error.find('\n'), std::string::npos);
    }
  }
  // The mutations must leave some inputs valid, else they test nothing deep.
  EXPECT_GT(accepted, 100);
}

TEST(FrameReader, SplitAtEveryByteBoundary) {
  std::vector<std::string> bodies = {"first", "", std::string(300, 'x'), "last"};
  std::string stream;
  for (auto &b : bodies) append_frame(b, &stream);
  for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
    FrameReader r(1024);
    std::vector<std::string> got;
    std::string frame, error;
    r.feed(stream.data(), cut);
    while (r.next(&frame, &error) == 1) got.push_back(frame);
    r.feed(stream.data() + cut, stream.size() - cut);
    int rc;
    while ((rc = r.next(&frame, &error)) == 1) got.push_back(frame);
    EXPECT_EQ(rc, 0);
    EXPECT_EQ(got, bodies) << "cut at " << cut;
    EXPECT_EQ(r.buffered(), 0u);
  }
}

TEST(FrameReader, ByteAtATime) {
  std::string stream;
  for (int i = 0; i < 50; ++i) append_frame("frame" + std::to_string(i), &stream);
  FrameReader r(64);
  std::string frame, error;
  int n = 0;
  for (char c : stream) {
    r.feed(&c, 1);
    while (r.next(&frame, &error) == 1) EXPECT_EQ(frame, "frame" + std::to_string(n++));
  }
  EXPECT_EQ(n, 50);
}

TEST(FrameReader, OversizedLengthFails) {
  FrameReader r(100);
  std::string stream;
  append_frame(std::string(100, 'a'), &stream);
  append_frame(std::string(101, 'b'), &stream);
  r.feed(stream.data(), 4 + 100 + 4);  // the second frame's length only
  std::string frame, error;
  EXPECT_EQ(r.next(&frame, &error), 1);
  EXPECT_EQ(r.next(&frame, &error), -1);
  expect_one_line(error);
  EXPECT_NE(error.find("101"), std::string::npos) << error;

  FrameReader huge(kMaxMessage);
  const char len[4] = {'\xff', '\xff', '\xff', '\xff'};
  huge.feed(len, 4);
  EXPECT_EQ(huge.next(&frame, &error), -1);
}

TEST(FrameReader, ManySmallFramesStayLinear) {
  // 1M frames fed in 4 MiB chunks: a reader that shifts its buffer on every
  // frame would move ~300k * 2 MiB per chunk here and time out.
  constexpr std::size_t kFrames = 1000000;
  std::string stream;
  for (std::size_t i = 0; i < kFrames; ++i) append_frame("0123456789", &stream);
  FrameReader r(64);
  std::string frame, error;
  std::size_t n = 0;
  for (std::size_t at = 0; at < stream.size(); at += 4 << 20) {
    std::size_t len = std::min<std::size_t>(4 << 20, stream.size() - at);
    r.feed(stream.data() + at, len);
    while (r.next(&frame, &error) == 1) ++n;
    EXPECT_LT(r.buffered(), 14u);
  }
  EXPECT_EQ(n, kFrames);
}

}  // namespace
}  // namespace trlmdb::repl
