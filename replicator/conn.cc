#include "conn.h"

#include <arpa/inet.h>

#include <cstdlib>
#include <cstring>
#include <ctime>
#include <thread>

#include "clock.h"
#include "env_repl.h"
#include "listener.h"
#include "log.h"
#include "loop.h"
#include "real_lmdb.h"

namespace trlmdb::repl {

namespace {

// Received changes are applied in one write transaction per loop iteration,
// or sooner once this many bytes are waiting.
constexpr std::size_t kApplyBytes = 8u << 20;
// Catch-up entries are read from LMDB while the socket's queue is below this.
constexpr std::size_t kCatchupQueue = 4u << 20;
constexpr std::size_t kMaxEarlyRecon = 64;

struct WriteReq {
  uv_write_t req;
  std::string data;
  Conn *conn;
};

std::string peer_name(uv_tcp_t *tcp) {
  sockaddr_storage sa;
  int len = sizeof sa;
  if (uv_tcp_getpeername(tcp, reinterpret_cast<sockaddr *>(&sa), &len) != 0) return "?";
  char ip[64] = "?";
  unsigned port = 0;
  if (sa.ss_family == AF_INET) {
    auto *in = reinterpret_cast<sockaddr_in *>(&sa);
    uv_ip4_name(in, ip, sizeof ip);
    port = ntohs(in->sin_port);
    return std::string(ip) + ":" + std::to_string(port);
  }
  auto *in6 = reinterpret_cast<sockaddr_in6 *>(&sa);
  uv_ip6_name(in6, ip, sizeof ip);
  port = ntohs(in6->sin6_port);
  return "[" + std::string(ip) + "]:" + std::to_string(port);
}

std::string host_of(const std::string &remote) {
  if (!remote.empty() && remote[0] == '[') return remote.substr(1, remote.find(']') - 1);
  return remote.substr(0, remote.rfind(':'));
}

// The test-only shift of the hybrid clock (TRLMDB_TEST_CLOCK_SHIFT_MS, see
// shim/bookkeeping.cc) also moves the wall clock this node shows its peers,
// so tests can fake a skewed node.
uint64_t shown_wall_clock() {
  static const int64_t shift = [] {
    const char *s = std::getenv("TRLMDB_TEST_CLOCK_SHIFT_MS");
    return (s && *s) ? clock_units_from_ms(std::strtoll(s, nullptr, 10)) : 0;
  }();
  return wall_clock_now() + static_cast<uint64_t>(shift);
}

uint64_t wall_seconds() { return static_cast<uint64_t>(std::time(nullptr)); }

}  // namespace

Conn::Conn(Loop *loop, bool initiator) : loop_(loop), initiator_(initiator) {
  uv_tcp_init(loop->uv(), &tcp_);
  uv_timer_init(loop->uv(), &timer_);
  uv_check_init(loop->uv(), &check_);
  tcp_.data = timer_.data = check_.data = this;
  open_handles_ = 3;
  read_buf_.resize(256 * 1024);
  last_recv_ms_ = started_ms_ = last_tick_ms_ = uv_now(loop->uv());
}

Conn::~Conn() = default;

std::size_t Conn::write_queue() const { return uv_stream_get_write_queue_size(stream()); }

Conn *Conn::dial(Loop *loop, EnvRepl *env, PeerSlot *slot) {
  auto *c = new Conn(loop, true);
  c->env_ = env;
  c->slot_ = slot;
  c->remote_ = slot->addr.str();
  sockaddr_storage sa;
  std::string error;
  c->arm_timer();
  if (!resolve(slot->addr, &sa, &error)) {
    c->close(error, LogLevel::kError);
    return c;
  }
  c->connect_req_.data = c;
  int rc = uv_tcp_connect(
      &c->connect_req_, &c->tcp_, reinterpret_cast<sockaddr *>(&sa),
      [](uv_connect_t *req, int status) { static_cast<Conn *>(req->data)->on_connected(status); });
  if (rc) c->close(std::string("cannot connect: ") + uv_strerror(rc), LogLevel::kDebug);
  return c;
}

Conn *Conn::accept(Loop *loop, uv_stream_t *server) {
  auto *c = new Conn(loop, false);
  if (uv_accept(server, c->stream()) != 0) {
    c->close("accept failed", LogLevel::kDebug);
    return nullptr;
  }
  uv_tcp_nodelay(&c->tcp_, 1);
  c->connected_ = true;
  uv_os_fd_t fd;
  if (uv_fileno(reinterpret_cast<uv_handle_t *>(&c->tcp_), &fd) == 0) register_fd(fd);
  c->remote_ = peer_name(&c->tcp_);
  c->arm_timer();
  c->start_reading();
  return c;
}

void Conn::arm_timer() {
  const EnvRepl *env = env_;
  uint64_t every = env ? std::max<uint64_t>(100, env->config().timeout_ms / 4) : 500;
  uv_timer_start(
      &timer_, [](uv_timer_t *t) { static_cast<Conn *>(t->data)->on_tick(); }, every, every);
}

void Conn::on_connected(int status) {
  if (state_ == State::kClosing) return;
  if (status < 0) {
    close(std::string("cannot connect: ") + uv_strerror(status), LogLevel::kDebug);
    return;
  }
  uv_tcp_nodelay(&tcp_, 1);
  connected_ = true;
  uv_os_fd_t fd;
  if (uv_fileno(reinterpret_cast<uv_handle_t *>(&tcp_), &fd) == 0) register_fd(fd);
  start_reading();
  Handshake::Params p;
  p.initiator = true;
  p.secret = env_->config().secret;
  p.cluster = env_->config().cluster;
  p.env_name = env_->name();
  p.node = env_->node();
  p.max_skew = clock_units_from_ms(env_->config().max_skew_ms);
  p.wall_now = shown_wall_clock;
  handshake_ = std::make_unique<Handshake>(std::move(p));
  write_raw(handshake_->hello_frame());
}

void Conn::start_reading() {
  state_ = State::kHandshake;
  uv_read_start(stream(), alloc_cb, read_cb);
}

void Conn::alloc_cb(uv_handle_t *h, size_t, uv_buf_t *buf) {
  auto *c = static_cast<Conn *>(h->data);
  *buf = uv_buf_init(c->read_buf_.data(), static_cast<unsigned>(c->read_buf_.size()));
}

void Conn::read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *) {
  auto *c = static_cast<Conn *>(s->data);
  if (nread < 0) {
    c->close(nread == UV_EOF ? "connection closed by the peer"
                             : std::string("read failed: ") + uv_strerror(static_cast<int>(nread)),
             LogLevel::kInfo);
    return;
  }
  if (nread > 0) c->on_data(c->read_buf_.data(), static_cast<std::size_t>(nread));
}

void Conn::on_data(const char *data, std::size_t n) {
  if (state_ == State::kClosing) return;
  bytes_received += n;
  last_recv_ms_ = uv_now(loop_->uv());
  last_contact_wall = wall_seconds();
  if (env_) env_->add_received(n);
  reader_.feed(data, n);
  std::string frame, error;
  while (state_ != State::kClosing) {
    int r = reader_.next(&frame, &error);
    if (r < 0) return close("malformed frame: " + error, LogLevel::kWarn);
    if (r == 0) break;
    if (state_ == State::kHandshake) {
      on_handshake_frame(frame);
      continue;
    }
    std::string plain;
    if (!channel_->open(frame, &plain))
      return close("a frame failed authentication (tampered or out of order)", LogLevel::kWarn);
    on_message(plain);
  }
  if (state_ == State::kReady && (!incoming_.empty() || !incoming_acks_.empty())) {
    if (incoming_bytes_ >= kApplyBytes)
      flush_received();
    else
      uv_check_start(&check_, [](uv_check_t *h) {
        uv_check_stop(h);
        static_cast<Conn *>(h->data)->flush_received();
      });
  }
}

void Conn::refuse(const Step &step) {
  if (!step.reply.empty()) write_raw(step.reply);  // queued before the close: it leaves first
  close("refused: " + step.reason, LogLevel::kError);
}

void Conn::on_handshake_frame(std::string_view body) {
  std::string reason;
  if (Handshake::parse_error(body, &reason))
    return close("the peer refused the connection: " + reason, LogLevel::kError);
  if (!handshake_) {  // acceptor: the hello names the environment
    std::string name;
    if (!Handshake::peek_env_name(body, &name)) {
      // Let a bare handshake say what is wrong (version, magic, ...).
      Handshake probe(Handshake::Params{});
      Step s = probe.on_hello(body);
      if (s.ok) s = Step{false, "malformed HELLO", Handshake::error_frame("malformed HELLO")};
      return refuse(s);
    }
    EnvRepl *env = loop_->find_env(name);
    if (!env) {
      write_raw(Handshake::error_frame("no environment named \"" + name + "\" here"));
      return close("asked for environment \"" + name + "\", which this process does not serve",
                   LogLevel::kWarn);
    }
    if (!env->accepts_from(host_of(remote_))) {
      write_raw(
          Handshake::error_frame("this node does not accept connections from " + host_of(remote_)));
      return close("not in the accept list", LogLevel::kWarn);
    }
    env_ = env;
    env->attach(this);
    arm_timer();
    Handshake::Params p;
    p.initiator = false;
    p.secret = env->config().secret;
    p.cluster = env->config().cluster;
    p.env_name = env->name();
    p.node = env->node();
    p.max_skew = clock_units_from_ms(env->config().max_skew_ms);
    p.wall_now = shown_wall_clock;
    handshake_ = std::make_unique<Handshake>(std::move(p));
    handshake_->set_local_node(env->node());
    Step s = handshake_->on_hello(body);
    if (!s.ok) return refuse(s);
    write_raw(handshake_->hello_frame());
    hs_stage_ = 1;
    return;
  }
  if (initiator_ && hs_stage_ == 0) {
    Step s = handshake_->on_hello(body);
    if (!s.ok) return refuse(s);
    write_raw(handshake_->auth_frame());
    hs_stage_ = 1;
    return;
  }
  Step s = handshake_->on_auth(body);
  if (!s.ok) return refuse(s);
  if (!initiator_) write_raw(handshake_->auth_frame());
  channel_ = handshake_->take_channel();
  remote_node_ = handshake_->peer_hello().node;
  handshake_.reset();
  become_ready();
}

void Conn::become_ready() {
  state_ = State::kReady;
  reader_.set_max(kMaxMessage + SecureChannel::kOverhead);
  env_->conn_handshaken(this);
  if (state_ == State::kReady) start_recon();
}

void Conn::on_message(std::string_view plain) {
  Message m;
  std::string error;
  if (!decode_message(plain, &m, &error))
    return close("malformed message: " + error, LogLevel::kWarn);
  switch (m.type) {
    case MsgType::kChanges: {
      // A stamp far ahead of every clock in the cluster would win every
      // conflict from then on and drag this node's clock along: refused.
      const uint64_t limit = shown_wall_clock() +
                             2 * clock_units_from_ms(env_->config().max_skew_ms) +
                             clock_units_from_ms(1000);
      for (const Change &c : m.changes.changes)
        if (c.ts.time > limit)
          return close("a change stamped " + format_ts(c.ts) +
                           " is further ahead of this node's clock than the allowed skew",
                       LogLevel::kError);
      for (Change &c : m.changes.changes) {
        incoming_bytes_ += c.payload_bytes();
        incoming_.push_back(std::move(c));
      }
      if (m.changes.seq) incoming_acks_.push_back(m.changes.seq);
      break;
    }
    case MsgType::kAck:
      env_->on_ack(this, m.ack.seq);
      break;
    case MsgType::kRecon:
      on_recon_payload(m.recon);
      break;
    case MsgType::kPing: {
      std::string out;
      encode_ping(MsgType::kPong, m.ping, &out);
      send(out);
      break;
    }
    case MsgType::kPong:
      break;
    case MsgType::kError:
      close("the peer closed the session: " + m.error.reason, LogLevel::kWarn);
      break;
    case MsgType::kPeers:
      remote_direct_.clear();
      for (uint32_t n : m.peers.nodes) remote_direct_.push_back(n & ~0xffu);
      break;
    case MsgType::kCatchupDone:
      TRLMDB_LOG(LogLevel::kInfo, "[%s] caught up with %s", env_->name().c_str(), remote_.c_str());
      break;
  }
}

void Conn::flush_received() {
  if (state_ != State::kReady) return;
  if (!incoming_.empty() && !env_->apply(this, incoming_)) {
    incoming_.clear();
    incoming_acks_.clear();
    return;  // apply closed the connection: the peer resends after reconnecting
  }
  incoming_.clear();
  incoming_bytes_ = 0;
  std::string out;
  for (uint64_t seq : incoming_acks_) encode_ack(AckMsg{seq}, &out), send(out), out.clear();
  incoming_acks_.clear();
}

void Conn::send(const std::string &message) {
  if (state_ != State::kReady || !channel_) return;
  std::string frame;
  channel_->seal(message, &frame);
  write_raw(std::move(frame));
}

void Conn::write_raw(std::string bytes) {
  if (state_ == State::kClosing || !connected_) return;
  bytes_sent += bytes.size();
  if (env_) env_->add_sent(bytes.size());
  auto *w = new WriteReq{{}, std::move(bytes), this};
  w->req.data = w;
  uv_buf_t buf = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
  int rc = uv_write(&w->req, stream(), &buf, 1, [](uv_write_t *req, int status) {
    auto *w = static_cast<WriteReq *>(req->data);
    Conn *c = w->conn;
    delete w;
    if (status == 0) c->on_write_done();
  });
  if (rc) {
    delete w;
    close(std::string("write failed: ") + uv_strerror(rc), LogLevel::kInfo);
  }
}

void Conn::on_write_done() {
  if (catchup_sending_ && state_ == State::kReady) maybe_send_catchup();
}

// The snapshot of a million entries takes a few hundred milliseconds, so it
// is taken off the loop thread — on a thread of its own rather than libuv's
// pool: a forked child would try to join the pool's threads at exit.
void Conn::start_recon() {
  snapshot_pending_ = true;
  recon_started_ms_ = uv_now(loop_->uv());
  env_->begin_work();
  auto *q = new SnapshotReq{};
  q->conn = this;
  q->env = env_;
  q->store = &env_->store();
  Loop *loop = loop_;
  std::thread([q, loop] {
    std::vector<ReconItem> items;
    q->env->work_enter();
    q->rc = q->store->snapshot(&items);
    q->env->work_leave();
    if (q->rc == 0) q->snapshot = std::make_shared<const ReconSnapshot>(std::move(items));
    loop->post([q] {
      q->env->end_work();  // the environment may close only after this
      q->conn->on_snapshot(q);
      delete q;
    });
  }).detach();
}

void Conn::on_snapshot(SnapshotReq *q) {
  snapshot_pending_ = false;
  if (state_ != State::kReady) {
    if (state_ == State::kClosing && open_handles_ == 0) delete this;
    return;
  }
  if (q->rc)
    return close(std::string("cannot read _trlmdb_time: ") + real().mdb_strerror(q->rc),
                 LogLevel::kError);
  snapshot_ = std::move(q->snapshot);
  recon_ = std::make_unique<Reconciler>(snapshot_, initiator_);
  if (initiator_) send_recon(recon_->start());
  std::vector<std::string> early = std::move(early_recon_);
  for (const std::string &p : early) {
    if (state_ != State::kReady) return;
    on_recon_payload(p);
  }
}

void Conn::send_recon(const std::string &payload) {
  std::string out;
  encode_recon(payload, &out);
  send(out);
}

// The reconciliation ends when one side's reply comes out empty: only that
// side knows, so it says so with an empty payload, and both sides then send
// what the other lacks.
void Conn::on_recon_payload(std::string_view payload) {
  if (catchup_sending_ || catchup_sent_)
    return close("reconciliation message after the reconciliation ended", LogLevel::kWarn);
  if (!recon_) {
    if (early_recon_.size() >= kMaxEarlyRecon)
      return close("too many reconciliation messages before our snapshot", LogLevel::kWarn);
    early_recon_.emplace_back(payload);
    return;
  }
  if (payload.empty()) {
    if (!recon_->done()) return close("the peer ended the reconciliation early", LogLevel::kWarn);
    return finish_recon();
  }
  std::string reply, error;
  if (!recon_->on_message(payload, &reply, &error))
    return close("bad reconciliation message: " + error, LogLevel::kWarn);
  if (!reply.empty()) return send_recon(reply);
  if (!recon_->done()) return close("reconciliation stalled", LogLevel::kError);
  std::string out;
  encode_recon({}, &out);  // the end, for the peer
  send(out);
  finish_recon();
}

void Conn::finish_recon() {
  send_set_ = recon_->to_send();
  recon_bytes_ = recon_->bytes_out() + recon_->bytes_in();
  recon_.reset();
  snapshot_.reset();
  TRLMDB_LOG(LogLevel::kDebug, "[%s] reconciliation with %s: %llu bytes, %llu ms",
             env_->name().c_str(), remote_.c_str(), static_cast<unsigned long long>(recon_bytes_),
             static_cast<unsigned long long>(uv_now(loop_->uv()) - recon_started_ms_));
  catchup_sending_ = true;
  maybe_send_catchup();
}

void Conn::maybe_send_catchup() {
  while (catchup_sending_ && state_ == State::kReady && write_queue() < kCatchupQueue) {
    std::vector<Change> changes;
    if (!send_set_.empty()) {
      int rc = env_->store().read_time(&catchup_pos_, send_set_, 512, 1u << 20, &changes);
      if (rc)
        return close(std::string("cannot read catch-up entries: ") + real().mdb_strerror(rc),
                     LogLevel::kError);
    } else {
      catchup_pos_.finished = true;
    }
    if (!changes.empty()) {
      catchup_entries_ += changes.size();
      std::string out;
      encode_changes(ChangesMsg{0, std::move(changes)}, &out);
      send(out);
    }
    if (catchup_pos_.finished) {
      std::string out;
      encode_catchup_done(&out);
      send(out);
      catchup_sending_ = false;
      catchup_sent_ = true;
      send_set_ = SendSet{};
      TRLMDB_LOG(LogLevel::kInfo, "[%s] catch-up to %s: %zu entries sent, %llu ms",
                 env_->name().c_str(), remote_.c_str(), catchup_entries_,
                 static_cast<unsigned long long>(uv_now(loop_->uv()) - recon_started_ms_));
    }
  }
}

void Conn::on_tick() {
  const uint64_t now = uv_now(loop_->uv());
  if (state_ == State::kClosing) {
    if (now - close_started_ms_ > 2000) close_handles();
    return;
  }
  const uint64_t timeout = env_ ? env_->config().timeout_ms : 10000;
  if (state_ != State::kReady) {
    if (now - started_ms_ > timeout) close("handshake timed out", LogLevel::kWarn);
    return;
  }
  // A loop that was itself held up (a long write transaction) has not read
  // what arrived meanwhile: judge the peer only after the loop caught up.
  const uint64_t since_tick = now - last_tick_ms_;
  last_tick_ms_ = now;
  if (since_tick > timeout / 2) return;
  if (now - last_recv_ms_ > timeout) {
    close("no response for " + std::to_string((now - last_recv_ms_) / 1000.0) + " s",
          LogLevel::kWarn);
    return;
  }
  std::string out;
  encode_ping(MsgType::kPing, PingMsg{now}, &out);
  send(out);
}

bool Conn::peer_has_session_with(uint32_t node_key) const {
  for (uint32_t n : remote_direct_)
    if (n == node_key) return true;
  return false;
}

void Conn::close(const std::string &reason, LogLevel level) {
  if (state_ == State::kClosing) return;
  was_ready_ = state_ == State::kReady;
  state_ = State::kClosing;
  close_started_ms_ = uv_now(loop_->uv());
  if (env_)
    TRLMDB_LOG(level, "[%s] %s %s: %s", env_->name().c_str(), initiator_ ? "peer" : "incoming",
               remote_.c_str(), reason.c_str());
  else
    TRLMDB_LOG(level, "incoming %s: %s", remote_.c_str(), reason.c_str());
  close_reason_ = reason;
  if (env_) env_->conn_closed(this);
  env_ = nullptr;
  uv_os_fd_t fd;
  if (connected_ && uv_fileno(reinterpret_cast<uv_handle_t *>(&tcp_), &fd) == 0) unregister_fd(fd);
  if (connected_) {
    uv_read_stop(stream());
    // Let queued frames (an ERROR telling the peer why) leave first; the
    // timer forces the close if the peer does not read.
    shutdown_req_.data = this;
    if (uv_shutdown(&shutdown_req_, stream(), [](uv_shutdown_t *req, int) {
          static_cast<Conn *>(req->data)->close_handles();
        }) == 0)
      return;
  }
  close_handles();
}

void Conn::close_handles() {
  if (handles_closing_) return;
  handles_closing_ = true;
  auto closed = [](uv_handle_t *h) {
    auto *c = static_cast<Conn *>(h->data);
    if (--c->open_handles_ == 0 && !c->snapshot_pending_) delete c;
  };
  uv_close(reinterpret_cast<uv_handle_t *>(&tcp_), closed);
  uv_close(reinterpret_cast<uv_handle_t *>(&timer_), closed);
  uv_close(reinterpret_cast<uv_handle_t *>(&check_), closed);
}

}  // namespace trlmdb::repl
