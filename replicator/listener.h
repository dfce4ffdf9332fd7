// A listening TCP address, shared by every environment of the process that
// is configured with it (DESIGN.md section 3: one address for all).
// Incoming connections name their environment in the handshake.
#pragma once

#include <uv.h>

#include <string>

#include "config.h"

namespace trlmdb::repl {

class Loop;

class Listener {
 public:
  static Listener *open(Loop *loop, const HostPort &addr, std::string *error);
  void close();  // deletes itself once the handle is closed

  const HostPort &addr() const { return addr_; }
  uint16_t bound_port() const { return bound_port_; }
  int users = 0;

 private:
  Listener(Loop *loop, HostPort addr) : loop_(loop), addr_(std::move(addr)) {}
  static void on_connection(uv_stream_t *server, int status);

  Loop *loop_;
  HostPort addr_;
  uint16_t bound_port_ = 0;
  uv_tcp_t tcp_;
};

// Resolves a numeric or "localhost" host to a socket address (no DNS on the
// loop thread: other names fail with a clear error).
bool resolve(const HostPort &hp, sockaddr_storage *out, std::string *error);

}  // namespace trlmdb::repl
