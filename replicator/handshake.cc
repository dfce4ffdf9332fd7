#include "handshake.h"

#include <sodium.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "clock.h"
#include "wire.h"

namespace trlmdb::repl {

namespace {

// Every handshake frame body starts with one of these, so an ERROR can stand
// in for the HELLO or AUTH the receiver expects.
constexpr char kHelloType = 'H';
constexpr char kAuthType = 'A';
constexpr char kErrorType = 'E';
constexpr char kMagic[4] = {'T', 'R', 'L', 'M'};
// Names travel before authentication; the bound keeps a hello well inside
// kMaxHandshakeMessage.
constexpr std::size_t kMaxName = 1024;
constexpr std::size_t kMaxErrorText = 512;

constexpr std::size_t kKeyBytes = 32;
constexpr std::size_t kHeaderBytes = crypto_secretstream_xchacha20poly1305_HEADERBYTES;
constexpr std::size_t kTagBytes = crypto_auth_hmacsha512256_BYTES;
constexpr std::size_t kAuthBodyBytes = 1 + kTagBytes + kHeaderBytes;
static_assert(SecureChannel::kOverhead == crypto_secretstream_xchacha20poly1305_ABYTES);
static_assert(kTagBytes == 32 && crypto_kx_SESSIONKEYBYTES == kKeyBytes &&
              crypto_secretstream_xchacha20poly1305_KEYBYTES == kKeyBytes &&
              crypto_kx_PUBLICKEYBYTES == 32);

// Domain separation: each derived value hashes its own label first, so no
// two of them can collide even over the same inputs.
constexpr std::string_view kAuthKeyLabel = "trlmdb auth v1";
constexpr std::string_view kTranscriptLabel = "trlmdb transcript v1";
constexpr std::string_view kInitiatorRole = "trlmdb initiator";
constexpr std::string_view kAcceptorRole = "trlmdb acceptor";
constexpr std::string_view kI2ALabel = "trlmdb initiator->acceptor v1";
constexpr std::string_view kA2ILabel = "trlmdb acceptor->initiator v1";

constexpr const char *kAuthFailedLocal =
    "authentication failed: the peer does not know this cluster's secret";
constexpr const char *kAuthFailedRemote = "authentication failed: wrong cluster secret?";

const unsigned char *u8(std::string_view s) {
  return reinterpret_cast<const unsigned char *>(s.data());
}

void hash_update(crypto_generichash_state *st, std::string_view s) {
  crypto_generichash_update(st, u8(s), s.size());
}

void hash_update_len(crypto_generichash_state *st, std::string_view s) {
  unsigned char len[4];
  put_be32(len, static_cast<uint32_t>(s.size()));
  crypto_generichash_update(st, len, 4);
  hash_update(st, s);
}

void put_le(std::string *out, uint64_t v, int n) {
  for (int i = 0; i < n; ++i) out->push_back(static_cast<char>(v >> (8 * i)));
}

uint64_t get_le(const unsigned char *p, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// Text from an unauthenticated peer goes into logs: keep it one line.
std::string printable(std::string_view s, std::size_t max = kMaxErrorText) {
  if (s.size() > max) s = s.substr(0, max);
  std::string r(s);
  for (auto &c : r) {
    auto b = static_cast<unsigned char>(c);
    if (b < 0x20 || b == 0x7f) c = '?';
  }
  return r;
}

std::string seconds_text(uint64_t units, bool integral_if_whole) {
  char buf[64];
  if (integral_if_whole && (units & 0xffffffffu) == 0) {
    std::snprintf(buf, sizeof buf, "%llu", static_cast<unsigned long long>(units >> 32));
  } else {
    std::snprintf(buf, sizeof buf, "%.1f", static_cast<double>(units) / 4294967296.0);
  }
  return buf;
}

class Channel final : public SecureChannel {
 public:
  Channel(const crypto_secretstream_xchacha20poly1305_state &push,
          const crypto_secretstream_xchacha20poly1305_state &pull)
      : push_(push), pull_(pull) {}
  ~Channel() override {
    sodium_memzero(&push_, sizeof push_);
    sodium_memzero(&pull_, sizeof pull_);
  }

  void seal(std::string_view plaintext, std::string *out) override {
    std::size_t clen = plaintext.size() + kOverhead;
    std::size_t at = out->size();
    out->resize(at + 4 + clen);
    auto *p = reinterpret_cast<unsigned char *>(out->data() + at);
    put_be32(p, static_cast<uint32_t>(clen));
    crypto_secretstream_xchacha20poly1305_push(&push_, p + 4, nullptr, u8(plaintext),
                                               plaintext.size(), nullptr, 0,
                                               crypto_secretstream_xchacha20poly1305_TAG_MESSAGE);
  }

  bool open(std::string_view body, std::string *plaintext) override {
    // After one bad frame the stream is not trusted again, whatever follows.
    if (broken_ || body.size() < kOverhead) {
      broken_ = true;
      return false;
    }
    plaintext->resize(body.size() - kOverhead);
    unsigned char tag = 0;
    if (crypto_secretstream_xchacha20poly1305_pull(
            &pull_, reinterpret_cast<unsigned char *>(plaintext->data()), nullptr, &tag, u8(body),
            body.size(), nullptr, 0) != 0 ||
        tag != crypto_secretstream_xchacha20poly1305_TAG_MESSAGE) {
      broken_ = true;
      plaintext->clear();
      return false;
    }
    return true;
  }

 private:
  crypto_secretstream_xchacha20poly1305_state push_;
  crypto_secretstream_xchacha20poly1305_state pull_;
  bool broken_ = false;
};

}  // namespace

struct Handshake::Impl {
  Params p;
  unsigned char auth_key[kKeyBytes];
  unsigned char kx_pk[crypto_kx_PUBLICKEYBYTES];
  unsigned char kx_sk[crypto_kx_SECRETKEYBYTES];
  unsigned char nonce[32];
  std::string my_hello;   // body, once built
  std::string peer_body;  // peer's HELLO body, once accepted
  Hello peer;
  bool have_peer = false;

  // Set by prepare(), once both hellos are known.
  bool prepared = false;
  unsigned char transcript[32];
  unsigned char tx_key[kKeyBytes];
  unsigned char rx_key[kKeyBytes];
  unsigned char my_header[kHeaderBytes];
  unsigned char my_tag[kTagBytes];
  crypto_secretstream_xchacha20poly1305_state push;

  bool done = false;
  std::unique_ptr<SecureChannel> channel;

  ~Impl() {
    sodium_memzero(auth_key, sizeof auth_key);
    sodium_memzero(kx_sk, sizeof kx_sk);
    sodium_memzero(tx_key, sizeof tx_key);
    sodium_memzero(rx_key, sizeof rx_key);
    sodium_memzero(&push, sizeof push);
    sodium_memzero(p.secret.data(), p.secret.size());
  }

  uint64_t now() const { return p.wall_now ? p.wall_now() : wall_clock_now(); }

  Step refuse(std::string reason, std::string reply_text) {
    Step s;
    s.ok = false;
    s.reason = std::move(reason);
    s.reply = Handshake::error_frame(reply_text);
    return s;
  }
  Step refuse(const std::string &reason) { return refuse(reason, reason); }
  Step peer_refused(std::string_view body) {
    std::string why;
    Handshake::parse_error(body, &why);
    Step s;
    s.ok = false;
    s.reason = "peer refused: " + why;
    return s;
  }

  void build_hello() {
    std::string &h = my_hello;
    h.push_back(kHelloType);
    h.append(kMagic, 4);
    put_le(&h, kProtocolVersion, 2);
    put_varint(&h, p.cluster.size());
    h.append(p.cluster);
    put_varint(&h, p.env_name.size());
    h.append(p.env_name);
    put_le(&h, p.node, 4);
    put_le(&h, now(), 8);
    h.append(reinterpret_cast<const char *>(kx_pk), sizeof kx_pk);
    h.append(reinterpret_cast<const char *>(nonce), sizeof nonce);
  }

  // Keyed BLAKE2b under the auth key, so session keys depend on the secret
  // as well as on the ephemeral exchange.
  void mix_key(const unsigned char kx_key[kKeyBytes], std::string_view label,
               unsigned char out[kKeyBytes]) {
    crypto_generichash_state st;
    crypto_generichash_init(&st, auth_key, sizeof auth_key, kKeyBytes);
    crypto_generichash_update(&st, kx_key, kKeyBytes);
    crypto_generichash_update(&st, transcript, sizeof transcript);
    hash_update(&st, label);
    crypto_generichash_final(&st, out, kKeyBytes);
  }

  void tag_for(std::string_view role, const unsigned char header[kHeaderBytes],
               unsigned char out[kTagBytes]) {
    crypto_auth_hmacsha512256_state st;
    crypto_auth_hmacsha512256_init(&st, auth_key, sizeof auth_key);
    crypto_auth_hmacsha512256_update(&st, u8(role), role.size());
    crypto_auth_hmacsha512256_update(&st, transcript, sizeof transcript);
    crypto_auth_hmacsha512256_update(&st, header, kHeaderBytes);
    crypto_auth_hmacsha512256_final(&st, out);
    sodium_memzero(&st, sizeof st);
  }

  // Derives everything both AUTH messages need. False: out of order, or the
  // peer's ephemeral key is unusable (*why says which).
  bool prepare(std::string *why) {
    if (prepared) return true;
    if (!have_peer || my_hello.empty()) {
      *why = "handshake out of order: AUTH before both HELLOs";
      return false;
    }
    const std::string &ih = p.initiator ? my_hello : peer_body;
    const std::string &ah = p.initiator ? peer_body : my_hello;
    crypto_generichash_state st;
    crypto_generichash_init(&st, nullptr, 0, sizeof transcript);
    hash_update(&st, kTranscriptLabel);
    hash_update_len(&st, ih);
    hash_update_len(&st, ah);
    crypto_generichash_final(&st, transcript, sizeof transcript);

    unsigned char rx[kKeyBytes], tx[kKeyBytes];
    int rc = p.initiator ? crypto_kx_client_session_keys(rx, tx, kx_pk, kx_sk, peer.kx_pk)
                         : crypto_kx_server_session_keys(rx, tx, kx_pk, kx_sk, peer.kx_pk);
    sodium_memzero(kx_sk, sizeof kx_sk);
    if (rc != 0) {
      *why = "key exchange failed: unusable ephemeral key from the peer";
      return false;
    }
    mix_key(tx, p.initiator ? kI2ALabel : kA2ILabel, tx_key);
    mix_key(rx, p.initiator ? kA2ILabel : kI2ALabel, rx_key);
    sodium_memzero(rx, sizeof rx);
    sodium_memzero(tx, sizeof tx);

    crypto_secretstream_xchacha20poly1305_init_push(&push, my_header, tx_key);
    tag_for(p.initiator ? kInitiatorRole : kAcceptorRole, my_header, my_tag);
    prepared = true;
    return true;
  }

  // Parses a HELLO body (type byte already checked) into `h`; "" on success,
  // else the reason.
  std::string parse_hello(std::string_view body, Hello *h) {
    if (body.size() > kMaxHandshakeMessage) return "oversized HELLO";
    const unsigned char *q = u8(body) + 1;
    const unsigned char *end = u8(body) + body.size();
    if (end - q < 6) return "truncated HELLO";
    if (std::memcmp(q, kMagic, 4) != 0) return "bad magic: not a trlmdb replicator";
    q += 4;
    h->version = static_cast<uint16_t>(get_le(q, 2));
    q += 2;
    // Checked before the rest: another version may lay the rest out differently.
    if (h->version != kProtocolVersion) {
      return "protocol version " + std::to_string(h->version) +
             " is not supported (this node speaks " + std::to_string(kProtocolVersion) + ")";
    }
    // "" on success, else the reason.
    auto name = [&](const char *what, std::string *out) -> std::string {
      uint64_t len = 0;
      if (!get_varint(&q, end, &len)) return "truncated HELLO";
      if (len > kMaxName) return std::string("HELLO ") + what + " longer than 1024 bytes";
      if (len > static_cast<uint64_t>(end - q)) return "truncated HELLO";
      out->assign(reinterpret_cast<const char *>(q), len);
      q += len;
      return "";
    };
    if (std::string why = name("cluster name", &h->cluster); !why.empty()) return why;
    if (std::string why = name("environment name", &h->env_name); !why.empty()) return why;
    if (end - q < 4 + 8 + 32 + 32) return "truncated HELLO";
    if (end - q > 4 + 8 + 32 + 32) return "malformed HELLO: trailing bytes";
    h->node = static_cast<uint32_t>(get_le(q, 4));
    q += 4;
    h->wall = get_le(q, 8);
    q += 8;
    std::memcpy(h->kx_pk, q, 32);
    std::memcpy(h->nonce, q + 32, 32);
    return "";
  }
};

Handshake::Handshake(Params p) : impl_(std::make_unique<Impl>()) {
  // sodium_init is idempotent and thread-safe; failure would mean no
  // randomness source, which nothing here can work around.
  if (sodium_init() < 0) std::abort();
  impl_->p = std::move(p);
  crypto_generichash_state st;
  crypto_generichash_init(&st, nullptr, 0, kKeyBytes);
  hash_update(&st, kAuthKeyLabel);
  hash_update(&st, impl_->p.secret);
  crypto_generichash_final(&st, impl_->auth_key, kKeyBytes);
  crypto_kx_keypair(impl_->kx_pk, impl_->kx_sk);
  randombytes_buf(impl_->nonce, sizeof impl_->nonce);
}

Handshake::~Handshake() = default;

std::string Handshake::hello_frame() {
  if (impl_->my_hello.empty()) impl_->build_hello();
  std::string out;
  append_frame(impl_->my_hello, &out);
  return out;
}

Step Handshake::on_hello(std::string_view body) {
  Impl &m = *impl_;
  if (!body.empty() && body[0] == kErrorType) return m.peer_refused(body);
  if (m.have_peer) return m.refuse("unexpected second HELLO");
  if (m.p.initiator && m.my_hello.empty()) return m.refuse("HELLO before ours was sent");
  if (body.empty() || body[0] != kHelloType) return m.refuse("expected a HELLO frame");
  Hello h;
  std::string why = m.parse_hello(body, &h);
  if (!why.empty()) return m.refuse(why);
  if (h.cluster != m.p.cluster) {
    return m.refuse("cluster \"" + printable(h.cluster) + "\" != \"" + printable(m.p.cluster) +
                    "\"");
  }
  if (m.p.max_skew != 0) {
    uint64_t ours = m.now();
    uint64_t diff = h.wall > ours ? h.wall - ours : ours - h.wall;
    if (diff > m.p.max_skew) {
      return m.refuse("wall clocks differ by " + seconds_text(diff, false) +
                      " s, more than the allowed " + seconds_text(m.p.max_skew, true) + " s");
    }
  }
  m.peer = h;
  m.peer_body.assign(body);
  m.have_peer = true;
  return Step{};
}

const Hello &Handshake::peer_hello() const { return impl_->peer; }

void Handshake::set_local_node(uint32_t node) { impl_->p.node = node; }

std::string Handshake::auth_frame() {
  Impl &m = *impl_;
  std::string why;
  if (!m.prepare(&why)) return std::string();
  std::string body;
  body.push_back(kAuthType);
  body.append(reinterpret_cast<const char *>(m.my_tag), kTagBytes);
  body.append(reinterpret_cast<const char *>(m.my_header), kHeaderBytes);
  std::string out;
  append_frame(body, &out);
  return out;
}

Step Handshake::on_auth(std::string_view body) {
  Impl &m = *impl_;
  if (!body.empty() && body[0] == kErrorType) return m.peer_refused(body);
  if (m.done) return m.refuse("unexpected second AUTH");
  std::string why;
  if (!m.prepare(&why)) return m.refuse(why);
  if (body.size() != kAuthBodyBytes || body[0] != kAuthType) {
    return m.refuse("malformed AUTH frame");
  }
  const unsigned char *tag = u8(body) + 1;
  const unsigned char *header = tag + kTagBytes;
  unsigned char expect[kTagBytes];
  m.tag_for(m.p.initiator ? kAcceptorRole : kInitiatorRole, header, expect);
  bool good = crypto_verify_32(expect, tag) == 0;
  sodium_memzero(expect, sizeof expect);
  if (!good) return m.refuse(kAuthFailedLocal, kAuthFailedRemote);

  crypto_secretstream_xchacha20poly1305_state pull;
  crypto_secretstream_xchacha20poly1305_init_pull(&pull, header, m.rx_key);
  m.channel = std::make_unique<Channel>(m.push, pull);
  sodium_memzero(&pull, sizeof pull);
  sodium_memzero(m.tx_key, sizeof m.tx_key);
  sodium_memzero(m.rx_key, sizeof m.rx_key);
  m.done = true;
  return Step{};
}

std::unique_ptr<SecureChannel> Handshake::take_channel() { return std::move(impl_->channel); }

bool Handshake::peek_env_name(std::string_view body, std::string *env_name) {
  if (body.empty() || body[0] != kHelloType) return false;
  Impl scratch;
  Hello h;
  if (!scratch.parse_hello(body, &h).empty()) return false;
  *env_name = std::move(h.env_name);
  return true;
}

bool Handshake::parse_error(std::string_view body, std::string *reason) {
  if (body.empty() || body[0] != kErrorType) return false;
  const unsigned char *q = u8(body) + 1;
  const unsigned char *end = u8(body) + body.size();
  uint64_t len = 0;
  if (!get_varint(&q, end, &len) || len > kMaxErrorText || len != static_cast<uint64_t>(end - q)) {
    *reason = "malformed ERROR frame";
    return true;
  }
  *reason = printable(std::string_view(reinterpret_cast<const char *>(q), len));
  return true;
}

std::string Handshake::error_frame(std::string_view reason) {
  if (reason.size() > kMaxErrorText) reason = reason.substr(0, kMaxErrorText);
  std::string body;
  body.push_back(kErrorType);
  put_varint(&body, reason.size());
  body.append(reason);
  std::string out;
  append_frame(body, &out);
  return out;
}

}  // namespace trlmdb::repl
