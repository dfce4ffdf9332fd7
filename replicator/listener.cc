#include "listener.h"

#include <arpa/inet.h>

#include <cstring>

#include "conn.h"
#include "log.h"
#include "loop.h"

namespace trlmdb::repl {

bool resolve(const HostPort &hp, sockaddr_storage *out, std::string *error) {
  std::memset(out, 0, sizeof *out);
  std::string host = hp.host == "localhost" ? "127.0.0.1" : hp.host;
  if (!host.empty() && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  auto *v4 = reinterpret_cast<sockaddr_in *>(out);
  auto *v6 = reinterpret_cast<sockaddr_in6 *>(out);
  if (uv_ip4_addr(host.c_str(), hp.port, v4) == 0) return true;
  if (uv_ip6_addr(host.c_str(), hp.port, v6) == 0) return true;
  *error =
      "\"" + hp.host + "\" is not a numeric address (names other than localhost are not resolved)";
  return false;
}

Listener *Listener::open(Loop *loop, const HostPort &addr, std::string *error) {
  sockaddr_storage sa;
  if (!resolve(addr, &sa, error)) return nullptr;
  auto *l = new Listener(loop, addr);
  uv_tcp_init(loop->uv(), &l->tcp_);
  l->tcp_.data = l;
  int rc = uv_tcp_bind(&l->tcp_, reinterpret_cast<sockaddr *>(&sa), 0);
  if (rc == 0) rc = uv_listen(reinterpret_cast<uv_stream_t *>(&l->tcp_), 128, on_connection);
  if (rc) {
    *error = "cannot listen on " + addr.str() + ": " + uv_strerror(rc);
    uv_close(reinterpret_cast<uv_handle_t *>(&l->tcp_),
             [](uv_handle_t *h) { delete static_cast<Listener *>(h->data); });
    return nullptr;
  }
  sockaddr_storage bound;
  int len = sizeof bound;
  uv_tcp_getsockname(&l->tcp_, reinterpret_cast<sockaddr *>(&bound), &len);
  l->bound_port_ =
      ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6 *>(&bound)->sin6_port
                                        : reinterpret_cast<sockaddr_in *>(&bound)->sin_port);
  uv_os_fd_t fd;
  if (uv_fileno(reinterpret_cast<uv_handle_t *>(&l->tcp_), &fd) == 0) register_fd(fd);
  TRLMDB_LOG(LogLevel::kInfo, "listening on %s (port %u)", addr.str().c_str(), l->bound_port_);
  return l;
}

void Listener::close() {
  uv_os_fd_t fd;
  if (uv_fileno(reinterpret_cast<uv_handle_t *>(&tcp_), &fd) == 0) unregister_fd(fd);
  uv_close(reinterpret_cast<uv_handle_t *>(&tcp_),
           [](uv_handle_t *h) { delete static_cast<Listener *>(h->data); });
}

void Listener::on_connection(uv_stream_t *server, int status) {
  auto *l = static_cast<Listener *>(server->data);
  if (status < 0) {
    TRLMDB_LOG(LogLevel::kWarn, "accept on %s failed: %s", l->addr_.str().c_str(),
               uv_strerror(status));
    return;
  }
  Conn::accept(l->loop_, server);
}

}  // namespace trlmdb::repl
