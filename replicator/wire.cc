#include "wire.h"

#include <cstring>

namespace trlmdb::repl {

namespace {

constexpr std::size_t kMaxXkey = 511;
constexpr std::size_t kMaxErrorText = 512;
// The smallest possible encoded change: xkey length, one xkey byte, the ts,
// flags and value count. A count above remaining/kMinChange cannot be
// honest, so it is refused before anything is reserved for it.
constexpr std::size_t kMinChange = 1 + 1 + kTsSize + 1 + 1;
// Once this many consumed bytes sit at the front of the buffer (and they are
// at least half of it), FrameReader drops them; the copy is then paid for by
// the frames already returned, so splitting stays linear.
constexpr std::size_t kCompactThreshold = 64 * 1024;

void put_le64(std::string *out, uint64_t v) {
  char b[8];
  for (int i = 0; i < 8; ++i) b[i] = static_cast<char>(v >> (8 * i));
  out->append(b, 8);
}

uint64_t get_le64(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

void put_bytes(std::string *out, std::string_view s) {
  put_varint(out, s.size());
  out->append(s);
}

// A bounded cursor over the input; every read checks the remaining length
// first, so a lying length can neither read past the end nor allocate.
struct Reader {
  const unsigned char *p;
  const unsigned char *end;

  std::size_t left() const { return static_cast<std::size_t>(end - p); }
  bool varint(uint64_t *v) { return get_varint(&p, end, v); }
  bool bytes(std::size_t n, std::string_view *out) {
    if (n > left()) return false;
    *out = std::string_view(reinterpret_cast<const char *>(p), n);
    p += n;
    return true;
  }
};

bool fail(std::string *error, std::string msg) {
  if (error) *error = std::move(msg);
  return false;
}

bool decode_change(Reader &r, std::size_t index, Change *c, std::size_t *values_left,
                   std::string *error) {
  auto bad = [&](const char *what) {
    return fail(error, "changes: entry " + std::to_string(index) + ": " + what);
  };
  uint64_t len = 0;
  if (!r.varint(&len)) return bad("truncated xkey length");
  if (len == 0) return bad("empty xkey");
  if (len > kMaxXkey) return bad("xkey longer than 511 bytes");
  std::string_view xkey;
  if (!r.bytes(len, &xkey)) return bad("truncated xkey");
  std::string_view dbname, key;
  if (!split_xkey(xkey, &dbname, &key)) return bad("xkey without a database separator");
  std::string_view tsb;
  if (!r.bytes(kTsSize, &tsb)) return bad("truncated timestamp");
  if (!parse_ts(tsb, &c->ts)) return bad("timestamp op byte is neither put nor delete");
  uint64_t flags = 0;
  if (!r.varint(&flags)) return bad("truncated database flags");
  if (flags > UINT32_MAX) return bad("database flags out of range");
  uint64_t nvalues = 0;
  if (!r.varint(&nvalues)) return bad("truncated value count");
  // Each value takes at least its one-byte length.
  if (nvalues > r.left()) return bad("value count larger than the message");
  if (nvalues > *values_left) return bad("more values in the message than the limit");
  *values_left -= nvalues;
  bool marker = key.empty();
  if (c->ts.is_delete() && nvalues != 0) return bad("delete with values");
  if (c->ts.is_put() && marker && nvalues != 0) return bad("database marker with values");
  if (c->ts.is_put() && !marker && nvalues == 0) return bad("put without a value");
  c->xkey.assign(xkey);
  c->db_flags = static_cast<uint32_t>(flags);
  c->values.clear();
  c->values.reserve(nvalues);
  for (uint64_t i = 0; i < nvalues; ++i) {
    uint64_t vlen = 0;
    if (!r.varint(&vlen)) return bad("truncated value length");
    std::string_view v;
    if (!r.bytes(vlen, &v)) return bad("truncated value");
    c->values.emplace_back(v);
  }
  return true;
}

bool decode_changes(Reader &r, ChangesMsg *m, std::string *error) {
  if (!r.varint(&m->seq)) return fail(error, "changes: truncated seq");
  uint64_t count = 0;
  if (!r.varint(&count)) return fail(error, "changes: truncated count");
  if (count > r.left() / kMinChange) return fail(error, "changes: count larger than the message");
  if (count > kMaxChangesPerMessage) return fail(error, "changes: more than 65536 in one message");
  m->changes.clear();
  m->changes.resize(count);
  std::size_t values_left = kMaxValuesPerMessage;
  for (uint64_t i = 0; i < count; ++i) {
    if (!decode_change(r, i, &m->changes[i], &values_left, error)) return false;
  }
  return true;
}

}  // namespace

std::size_t Change::payload_bytes() const {
  std::size_t n = xkey.size() + kTsSize;
  for (const auto &v : values) n += v.size();
  return n;
}

void put_varint(std::string *out, uint64_t v) {
  char b[10];
  int n = 0;
  while (v >= 0x80) {
    b[n++] = static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  b[n++] = static_cast<char>(v);
  out->append(b, n);
}

bool get_varint(const unsigned char **p, const unsigned char *end, uint64_t *v) {
  const unsigned char *q = *p;
  uint64_t r = 0;
  for (int i = 0; i < 10; ++i) {
    if (q == end) return false;
    unsigned char b = *q++;
    // The tenth byte holds bit 63 only; anything more would overflow.
    if (i == 9 && b > 1) return false;
    r |= static_cast<uint64_t>(b & 0x7f) << (7 * i);
    if (!(b & 0x80)) {
      *v = r;
      *p = q;
      return true;
    }
  }
  return false;
}

void encode_changes(const ChangesMsg &m, std::string *out) {
  std::size_t need = 1 + 20;
  for (const auto &c : m.changes) need += c.payload_bytes() + 10 + 10 * (2 + c.values.size());
  out->reserve(out->size() + need);
  out->push_back(static_cast<char>(MsgType::kChanges));
  put_varint(out, m.seq);
  put_varint(out, m.changes.size());
  for (const auto &c : m.changes) {
    put_bytes(out, c.xkey);
    unsigned char ts[kTsSize];
    encode_ts(c.ts, ts);
    out->append(reinterpret_cast<const char *>(ts), kTsSize);
    put_varint(out, c.db_flags);
    put_varint(out, c.values.size());
    for (const auto &v : c.values) put_bytes(out, v);
  }
}

void encode_ack(const AckMsg &m, std::string *out) {
  out->push_back(static_cast<char>(MsgType::kAck));
  put_varint(out, m.seq);
}

void encode_ping(MsgType type, const PingMsg &m, std::string *out) {
  out->push_back(static_cast<char>(type));
  put_le64(out, m.token);
}

void encode_error(const ErrorMsg &m, std::string *out) {
  // Truncated rather than refused: an error is sent while giving up, and a
  // decodable shortened reason is worth more than none.
  std::string_view r = m.reason;
  if (r.size() > kMaxErrorText) r = r.substr(0, kMaxErrorText);
  out->push_back(static_cast<char>(MsgType::kError));
  put_bytes(out, r);
}

void encode_recon(std::string_view payload, std::string *out) {
  out->push_back(static_cast<char>(MsgType::kRecon));
  out->append(payload);
}

void encode_catchup_done(std::string *out) {
  out->push_back(static_cast<char>(MsgType::kCatchupDone));
}

void encode_peers(const PeersMsg &m, std::string *out) {
  out->push_back(static_cast<char>(MsgType::kPeers));
  put_varint(out, m.nodes.size());
  for (uint32_t n : m.nodes) {
    for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>(n >> (8 * i)));
  }
}

bool decode_message(std::string_view bytes, Message *out, std::string *error) {
  if (bytes.empty()) return fail(error, "empty message");
  if (bytes.size() > kMaxMessage) return fail(error, "message larger than the maximum");
  Reader r{reinterpret_cast<const unsigned char *>(bytes.data()),
           reinterpret_cast<const unsigned char *>(bytes.data()) + bytes.size()};
  unsigned char type = *r.p++;
  out->type = static_cast<MsgType>(type);
  switch (out->type) {
    case MsgType::kChanges:
      if (!decode_changes(r, &out->changes, error)) return false;
      break;
    case MsgType::kAck:
      if (!r.varint(&out->ack.seq)) return fail(error, "ack: truncated seq");
      break;
    case MsgType::kPing:
    case MsgType::kPong:
      if (r.left() < 8) return fail(error, "ping: truncated token");
      out->ping.token = get_le64(r.p);
      r.p += 8;
      break;
    case MsgType::kError: {
      uint64_t len = 0;
      if (!r.varint(&len)) return fail(error, "error: truncated length");
      if (len > kMaxErrorText) return fail(error, "error: reason longer than 512 bytes");
      std::string_view s;
      if (!r.bytes(len, &s)) return fail(error, "error: truncated reason");
      out->error.reason.assign(s);
      break;
    }
    case MsgType::kRecon:
      out->recon.assign(reinterpret_cast<const char *>(r.p), r.left());
      r.p = r.end;
      break;
    case MsgType::kCatchupDone:
      break;
    case MsgType::kPeers: {
      uint64_t n = 0;
      if (!r.varint(&n)) return fail(error, "peers: truncated count");
      if (n > kMaxPeers) return fail(error, "peers: more than 1024 nodes");
      if (n * 4 != r.left()) return fail(error, "peers: count does not match the payload");
      out->peers.nodes.clear();
      for (uint64_t i = 0; i < n; ++i, r.p += 4)
        out->peers.nodes.push_back(
            static_cast<uint32_t>(r.p[0]) | static_cast<uint32_t>(r.p[1]) << 8 |
            static_cast<uint32_t>(r.p[2]) << 16 | static_cast<uint32_t>(r.p[3]) << 24);
      break;
    }
    default:
      return fail(error, "unknown message type " + std::to_string(type));
  }
  if (r.left() != 0) {
    return fail(error, "message type " + std::to_string(type) + ": " + std::to_string(r.left()) +
                           " trailing bytes");
  }
  return true;
}

void FrameReader::feed(const char *data, std::size_t n) {
  if (pos_ == buf_.size()) {
    buf_.clear();
    pos_ = 0;
  } else if (pos_ >= kCompactThreshold && pos_ >= buf_.size() / 2) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
  buf_.append(data, n);
}

int FrameReader::next(std::string *frame, std::string *error) {
  if (buffered() < 4) return 0;
  uint32_t len = get_be32(reinterpret_cast<const unsigned char *>(buf_.data() + pos_));
  if (len > max_) {
    if (error) {
      *error = "frame of " + std::to_string(len) + " bytes exceeds the maximum of " +
               std::to_string(max_);
    }
    return -1;
  }
  if (buffered() - 4 < len) return 0;
  frame->assign(buf_, pos_ + 4, len);
  pos_ += 4 + static_cast<std::size_t>(len);
  if (pos_ == buf_.size()) {
    buf_.clear();
    pos_ = 0;
  }
  return 1;
}

void append_frame(std::string_view body, std::string *out) {
  unsigned char len[4];
  put_be32(len, static_cast<uint32_t>(body.size()));
  out->reserve(out->size() + 4 + body.size());
  out->append(reinterpret_cast<const char *>(len), 4);
  out->append(body);
}

}  // namespace trlmdb::repl
