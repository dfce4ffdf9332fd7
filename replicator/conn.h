// One TCP connection to a peer, for one environment: handshake, encrypted
// framing, keepalive, catch-up and the live stream's messages. Owned by the
// loop thread; deletes itself once its handles are closed.
#pragma once

#include <uv.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config.h"
#include "handshake.h"
#include "reconcile.h"
#include "store.h"
#include "wire.h"

namespace trlmdb::repl {

class EnvRepl;
class Loop;
struct PeerSlot;

class Conn {
 public:
  enum class State { kConnecting, kHandshake, kReady, kClosing };

  // Outgoing: to slot's address for env. Incoming: from a listener; the
  // environment is known once the peer's hello names it.
  static Conn *dial(Loop *loop, EnvRepl *env, PeerSlot *slot);
  static Conn *accept(Loop *loop, uv_stream_t *server);

  void close(const std::string &reason, LogLevel level);
  void send(const std::string &message);  // one plaintext message, sealed

  State state() const { return state_; }
  bool ready() const { return state_ == State::kReady; }
  bool initiator() const { return initiator_; }
  uint32_t remote_node() const { return remote_node_; }
  const std::string &remote() const { return remote_; }  // "host:port"
  EnvRepl *env() const { return env_; }
  PeerSlot *slot() const { return slot_; }
  void detach_slot() { slot_ = nullptr; }
  const std::string &close_reason() const { return close_reason_; }
  bool was_ready() const { return was_ready_; }
  // The peer has its own session with `node` (PeersMsg): changes that came
  // from that node reach it directly.
  bool peer_has_session_with(uint32_t node_key) const;
  std::size_t write_queue() const;

  uint64_t bytes_sent = 0, bytes_received = 0;
  uint64_t last_contact_wall = 0;    // seconds since the epoch
  std::size_t awaiting_entries = 0;  // live-stream entries sent, not yet acknowledged

 private:
  struct SnapshotReq {
    Conn *conn = nullptr;
    EnvRepl *env = nullptr;
    Store *store = nullptr;
    std::shared_ptr<const ReconSnapshot> snapshot;  // sorted on the snapshot thread
    int rc = 0;
  };

  Conn(Loop *loop, bool initiator);
  ~Conn();
  uv_stream_t *stream() const {
    return reinterpret_cast<uv_stream_t *>(const_cast<uv_tcp_t *>(&tcp_));
  }
  void arm_timer();
  void start_reading();
  void on_connected(int status);
  void on_data(const char *data, std::size_t n);
  void on_handshake_frame(std::string_view body);
  void refuse(const Step &step);
  void on_message(std::string_view plaintext);
  void flush_received();
  void become_ready();
  void write_raw(std::string bytes);
  void on_write_done();
  void start_recon();
  void on_snapshot(SnapshotReq *q);
  void send_recon(const std::string &payload);
  void on_recon_payload(std::string_view payload);
  void finish_recon();
  void maybe_send_catchup();
  void on_tick();
  void close_handles();

  static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
  static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

  Loop *loop_;
  bool initiator_;
  State state_ = State::kConnecting;
  EnvRepl *env_ = nullptr;
  PeerSlot *slot_ = nullptr;
  uv_tcp_t tcp_;
  uv_timer_t timer_;
  uv_check_t check_;
  uv_connect_t connect_req_;
  uv_shutdown_t shutdown_req_;
  int open_handles_ = 0;
  bool connected_ = false;
  bool was_ready_ = false;
  std::vector<uint32_t> remote_direct_;  // node keys, from the peer's PeersMsg
  bool handles_closing_ = false;
  std::string remote_;
  std::string close_reason_;
  uint32_t remote_node_ = 0;
  uint64_t started_ms_ = 0, last_recv_ms_ = 0, close_started_ms_ = 0, last_tick_ms_ = 0;
  int hs_stage_ = 0;  // 0: expecting HELLO, 1: expecting AUTH

  std::unique_ptr<Handshake> handshake_;
  std::unique_ptr<SecureChannel> channel_;
  FrameReader reader_{kMaxHandshakeMessage};
  std::vector<char> read_buf_;

  // Changes received in one loop iteration, applied in one transaction.
  std::vector<Change> incoming_;
  std::size_t incoming_bytes_ = 0;
  std::vector<uint64_t> incoming_acks_;

  // Catch-up.
  std::shared_ptr<const ReconSnapshot> snapshot_;
  std::unique_ptr<Reconciler> recon_;
  std::vector<std::string> early_recon_;  // payloads that arrived before the snapshot
  bool snapshot_pending_ = false;
  bool catchup_sending_ = false;
  bool catchup_sent_ = false;
  SendSet send_set_;
  ScanPos catchup_pos_;
  uint64_t recon_started_ms_ = 0;
  uint64_t recon_bytes_ = 0;
  std::size_t catchup_entries_ = 0;

  friend class EnvRepl;
};

}  // namespace trlmdb::repl
