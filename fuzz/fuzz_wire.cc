// The frame splitter and the message decoder (replicator/wire.cc): the first
// bytes a peer controls after the handshake, and everything an authenticated
// peer sends. Properties, beyond "no sanitizer report":
// - a decoded message re-encodes to bytes that decode to the same message,
//   and re-encoding that gives the same bytes again (one canonical form);
// - FrameReader splits a stream into the same frames, and fails at the same
//   frame, however the stream is cut into reads.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "format.h"
#include "fuzz_util.h"
#include "wire.h"

using namespace trlmdb;
using namespace trlmdb::repl;
using trlmdb::fuzz::check;

namespace {

std::string encode(const Message &m) {
  std::string out;
  switch (m.type) {
    case MsgType::kChanges:
      encode_changes(m.changes, &out);
      break;
    case MsgType::kAck:
      encode_ack(m.ack, &out);
      break;
    case MsgType::kPing:
    case MsgType::kPong:
      encode_ping(m.type, m.ping, &out);
      break;
    case MsgType::kError:
      encode_error(m.error, &out);
      break;
    case MsgType::kRecon:
      encode_recon(m.recon, &out);
      break;
    case MsgType::kCatchupDone:
      encode_catchup_done(&out);
      break;
    case MsgType::kPeers:
      encode_peers(m.peers, &out);
      break;
  }
  return out;
}

bool same(const Message &a, const Message &b) {
  if (a.type != b.type) return false;
  switch (a.type) {
    case MsgType::kChanges:
      return a.changes.seq == b.changes.seq && a.changes.changes == b.changes.changes;
    case MsgType::kAck:
      return a.ack.seq == b.ack.seq;
    case MsgType::kPing:
    case MsgType::kPong:
      return a.ping.token == b.ping.token;
    case MsgType::kError:
      return a.error.reason == b.error.reason;
    case MsgType::kRecon:
      return a.recon == b.recon;
    case MsgType::kCatchupDone:
      return true;
    case MsgType::kPeers:
      return a.peers.nodes == b.peers.nodes;
  }
  return false;
}

// What every decoded change must satisfy (wire.h's contract for decode_message).
void check_changes(const ChangesMsg &m) {
  for (const Change &c : m.changes) {
    std::string_view db, key;
    check(!c.xkey.empty() && c.xkey.size() <= 511, "decoded xkey length");
    check(split_xkey(c.xkey, &db, &key), "decoded xkey without separator");
    check(c.ts.is_put() || c.ts.is_delete(), "decoded ts op byte");
    if (c.ts.is_delete() || key.empty()) check(c.values.empty(), "delete or marker with values");
    if (c.ts.is_put() && !key.empty()) check(!c.values.empty(), "put without a value");
  }
}

void round_trip(std::string_view bytes) {
  Message m;
  std::string error;
  if (!decode_message(bytes, &m, &error)) {
    check(!error.empty(), "decode failed without a reason");
    check(error.find('\n') == std::string::npos, "multi-line decode error", error);
    return;
  }
  if (m.type == MsgType::kChanges) check_changes(m.changes);
  std::string once = encode(m);
  Message m2;
  check(decode_message(once, &m2, &error), "re-encoded message does not decode", error);
  check(same(m, m2), "re-encoded message decodes differently", fuzz::hex(once));
  check(encode(m2) == once, "encoding is not stable", fuzz::hex(once));
}

// The reference splitter: the whole stream at once.
struct Split {
  std::vector<std::string> frames;
  bool failed = false;
};

Split split_whole(std::string_view s, std::size_t max) {
  Split r;
  std::size_t at = 0;
  while (s.size() - at >= 4) {
    uint32_t len = get_be32(reinterpret_cast<const unsigned char *>(s.data() + at));
    if (len > max) {
      r.failed = true;
      break;
    }
    if (s.size() - at - 4 < len) break;
    r.frames.emplace_back(s.substr(at + 4, len));
    at += 4 + len;
  }
  return r;
}

void frames(fuzz::Cursor in) {
  uint8_t ctl = in.byte();
  // Small maxima make the oversized-frame path reachable with small inputs.
  static constexpr std::size_t kMaxima[] = {
      0, 1, 16, 255, 4096, kMaxHandshakeMessage, kMaxMessage, UINT32_MAX};
  std::size_t max = kMaxima[ctl & 7];
  std::vector<std::size_t> chunks;
  for (int i = 0, n = 1 + ((ctl >> 3) & 7); i < n; ++i) chunks.push_back(1 + in.byte());
  // For one input in four, the stream repeats to about 160 KiB, past the
  // reader's compaction threshold (64 KiB consumed).
  std::string_view body = in.rest();
  std::size_t repeat =
      (ctl >> 6) == 3 ? std::min<std::size_t>(2000, 1 + (160 << 10) / (body.size() + 1)) : 1;
  std::string stream;
  for (std::size_t i = 0; i < repeat; ++i) stream.append(body);

  Split want = split_whole(stream, max);
  FrameReader reader(max);
  Split got;
  std::size_t at = 0, c = 0, total = 0;
  std::string frame, error;
  while (!got.failed) {
    int rc;
    while ((rc = reader.next(&frame, &error)) == 1) {
      got.frames.push_back(frame);
      total += frame.size() + 4;
    }
    if (rc < 0) {
      check(!error.empty(), "frame error without a reason");
      got.failed = true;
      break;
    }
    if (at == stream.size()) break;
    std::size_t n = std::min(chunks[c++ % chunks.size()], stream.size() - at);
    reader.feed(stream.data() + at, n);
    at += n;
  }
  check(got.failed == want.failed, "frame error depends on the read sizes");
  check(got.frames == want.frames, "frames depend on the read sizes");
  if (!got.failed) check(reader.buffered() == stream.size() - total, "buffered byte count");
  // Bounded: a repeated stream holds the same frames many times.
  for (std::size_t i = 0; i < got.frames.size() && i < 64; ++i) round_trip(got.frames[i]);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, std::size_t size) {
  round_trip(std::string_view(reinterpret_cast<const char *>(data), size));
  frames(fuzz::Cursor(data, size));
  return 0;
}
