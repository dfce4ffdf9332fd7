// Handshake and encrypted session (DESIGN.md section 3, security), with
// libsodium. Pure code: the caller moves bytes; nothing here does I/O.
//
// Sequence (every handshake message is a frame: wire.h append_frame):
//   initiator -> HELLO(env name)           acceptor routes it to its environment
//   acceptor  -> HELLO                       or an ERROR frame and close
//   initiator -> AUTH                        both sides now know both hellos
//   acceptor  -> AUTH                        or an ERROR frame and close
//   then every frame is a secretstream (xchacha20poly1305) message.
// HELLO: magic "TRLM", protocol version, cluster name, environment name,
// node word, wall clock, ephemeral X25519 key (crypto_kx), 32-byte nonce.
// AUTH: a keyed hash, with a key derived from the cluster secret, of the
// role and both hellos, plus the sender's secretstream header. Without the
// secret a peer cannot produce it, so a wrong secret fails on both sides;
// the session keys come from the ephemeral exchange mixed with the secret.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace trlmdb::repl {

struct Hello {
  uint16_t version = 0;
  std::string cluster;
  std::string env_name;
  uint32_t node = 0;  // node word of the sender's environment
  uint64_t wall = 0;  // sender's wall clock, seconds<<32|fraction
  unsigned char kx_pk[32] = {};
  unsigned char nonce[32] = {};
};

// Outcome of a step. `ok == false`: refuse the peer; `reason` is one line for
// this side's log, and `reply` (if not empty) is an ERROR frame to send to
// the peer before closing, so both sides say why.
struct Step {
  bool ok = true;
  std::string reason;
  std::string reply;
};

class SecureChannel;

class Handshake {
 public:
  struct Params {
    bool initiator = false;
    std::string secret;  // may be empty (loopback-only clusters)
    std::string cluster;
    std::string env_name;              // initiator: the environment it asks for
    uint32_t node = 0;                 // acceptor: may be set after on_hello (set_local_node)
    uint64_t max_skew = 0;             // clock units (2^-32 s); 0 = unchecked
    uint64_t (*wall_now)() = nullptr;  // default: trlmdb::wall_clock_now
  };
  explicit Handshake(Params p);
  ~Handshake();

  // The initiator's first frame; the acceptor's after set_local_node.
  std::string hello_frame();
  // Peer's HELLO (frame body). Checks magic, version, cluster, clock skew.
  Step on_hello(std::string_view body);
  const Hello &peer_hello() const;
  void set_local_node(uint32_t node);  // acceptor, once it has routed env_name

  std::string auth_frame();  // after on_hello succeeded (and, for the acceptor, hello_frame)
  // Peer's AUTH (frame body). On success the channel is ready.
  Step on_auth(std::string_view body);
  std::unique_ptr<SecureChannel> take_channel();

  // The environment an initiator's HELLO (frame body) asks for, read before
  // the acceptor builds its Handshake with that environment's settings.
  // False if body is not a well-formed HELLO.
  static bool peek_env_name(std::string_view body, std::string *env_name);

  // An ERROR frame body's reason, if `body` is one (a peer refusing us).
  static bool parse_error(std::string_view body, std::string *reason);
  static std::string error_frame(std::string_view reason);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Both directions of an authenticated session.
class SecureChannel {
 public:
  virtual ~SecureChannel() = default;
  // Appends one frame (length prefix + ciphertext) carrying `plaintext`.
  virtual void seal(std::string_view plaintext, std::string *out) = 0;
  // Decrypts one frame body; false if it fails authentication (tampered,
  // replayed, reordered or truncated stream).
  virtual bool open(std::string_view body, std::string *plaintext) = 0;
  // Bytes added to each message (for frame-size bounds).
  static constexpr std::size_t kOverhead = 17;
};

}  // namespace trlmdb::repl
