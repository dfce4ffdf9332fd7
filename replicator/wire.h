// The replication protocol's messages (DESIGN.md section 3) and their byte
// encoding. Pure code: no I/O, no LMDB. Every decoder validates lengths and
// counts against the bounds below before it allocates, and fails with a
// one-line reason instead of reading past its input.
//
// Encoding: little-endian fixed ints, LEB128 varints for lengths and counts,
// the 12-byte timestamp in its on-disk (big-endian) form.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "format.h"

namespace trlmdb::repl {

inline constexpr uint16_t kProtocolVersion = 1;
// Largest plaintext message after the handshake: a 16 MiB value, its key and
// framing fit with room to spare. Larger frames are malformed.
inline constexpr std::size_t kMaxMessage = 40u << 20;
// What one message may make a receiver allocate beyond its own bytes: each
// change and each value costs a fixed-size object, so their numbers are
// bounded too (a DUPSORT key with more duplicates cannot travel).
inline constexpr std::size_t kMaxChangesPerMessage = 65536;
inline constexpr std::size_t kMaxValuesPerMessage = 2u << 20;
// Handshake messages are small and arrive before the peer is authenticated.
inline constexpr std::size_t kMaxHandshakeMessage = 4096;

enum class MsgType : uint8_t {
  kChanges = 1,      // ChangesMsg
  kAck = 2,          // AckMsg
  kRecon = 3,        // opaque reconciliation payload (reconcile.h)
  kPing = 4,         // PingMsg
  kPong = 5,         // PingMsg
  kError = 6,        // ErrorMsg: the sender closes the connection after it
  kCatchupDone = 7,  // no payload: the sender has sent everything reconciliation asked for
  kPeers = 8         // PeersMsg
};

// One change of one xkey. The ts's op byte says put or delete. For a put of
// an ordinary key `values` holds the value; for a DUPSORT database it holds
// the whole duplicate set in database order; for a delete or a database
// marker (empty key) it is empty. `db_flags` are the database's flags at the
// origin (mdb_dbi_flags), so a receiver can create the database.
struct Change {
  std::string xkey;
  Ts ts;
  uint32_t db_flags = 0;
  std::vector<std::string> values;

  std::size_t payload_bytes() const;  // xkey + 12 + values, for accounting
  bool operator==(const Change &) const = default;
};

// seq > 0 asks for an AckMsg with the same seq once applied (live stream);
// seq == 0 needs no acknowledgement (reconciliation pushes).
struct ChangesMsg {
  uint64_t seq = 0;
  std::vector<Change> changes;
};

struct AckMsg {
  uint64_t seq = 0;
};

struct PingMsg {
  uint64_t token = 0;
};

// The node words the sender has a session with for this environment. A
// peer need not forward it changes that came from one of them: they arrive
// directly. Sent whenever that set changes.
struct PeersMsg {
  std::vector<uint32_t> nodes;  // at most kMaxPeers
};
inline constexpr std::size_t kMaxPeers = 1024;

struct ErrorMsg {
  std::string reason;  // one line, at most 512 bytes
};

// Encoders append one message (type byte + payload) to *out.
void encode_changes(const ChangesMsg &m, std::string *out);
void encode_ack(const AckMsg &m, std::string *out);
void encode_ping(MsgType type, const PingMsg &m, std::string *out);
void encode_error(const ErrorMsg &m, std::string *out);
void encode_recon(std::string_view payload, std::string *out);
void encode_catchup_done(std::string *out);
void encode_peers(const PeersMsg &m, std::string *out);

// A decoded message: `type` says which member is set.
struct Message {
  MsgType type{};
  ChangesMsg changes;
  AckMsg ack;
  PingMsg ping;
  ErrorMsg error;
  std::string recon;
  PeersMsg peers;
};

// Decodes exactly one message occupying all of `bytes`. False (with *error
// set) on an unknown type, a truncated or over-long field, a count or length
// beyond the bounds, trailing bytes, a timestamp whose op byte is not 0 or 1,
// an xkey without 0x00 or longer than 511 bytes, a delete or marker with
// values, or a put of a non-marker without a value.
bool decode_message(std::string_view bytes, Message *out, std::string *error);

// Incremental frame splitter for a byte stream: each frame is a 4-byte
// big-endian length followed by that many bytes.
class FrameReader {
 public:
  explicit FrameReader(std::size_t max_frame) : max_(max_frame) {}
  void feed(const char *data, std::size_t n);
  // 1: a frame was moved into *frame; 0: need more bytes; -1: the announced
  // length exceeds the maximum (*error says so); the stream is then unusable.
  int next(std::string *frame, std::string *error);
  void set_max(std::size_t max_frame) { max_ = max_frame; }
  std::size_t buffered() const { return buf_.size() - pos_; }

 private:
  std::size_t max_;
  std::string buf_;
  std::size_t pos_ = 0;
};

// Appends the 4-byte big-endian length of `body` and `body`.
void append_frame(std::string_view body, std::string *out);

// LEB128 helpers shared with reconcile.cc.
void put_varint(std::string *out, uint64_t v);
// Advances *p; false on truncation or more than 10 bytes.
bool get_varint(const unsigned char **p, const unsigned char *end, uint64_t *v);

}  // namespace trlmdb::repl
