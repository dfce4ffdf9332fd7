#include "progress.h"

#include <unistd.h>

#include <cstdio>

namespace trlmdb::cli {

Progress::Progress(bool force) : tty_(isatty(STDERR_FILENO) == 1), enabled_(force || tty_) {}

Progress::~Progress() { clear_line(); }

void Progress::clear_line() {
  if (!line_open_) return;
  std::fputs("\r\033[K", stderr);
  std::fflush(stderr);
  line_open_ = false;
}

void Progress::update(const std::string &status, bool now) {
  if (!enabled_) return;
  last_status_ = status;
  last_printed_ = false;
  auto t = std::chrono::steady_clock::now();
  auto interval = tty_ ? std::chrono::milliseconds(100) : std::chrono::milliseconds(1000);
  if (!now && t - last_draw_ < interval) return;
  last_draw_ = t;
  last_printed_ = true;
  if (tty_) {
    std::fprintf(stderr, "\r\033[K%s", status.c_str());
    line_open_ = true;
  } else {
    std::fprintf(stderr, "%s\n", status.c_str());
  }
  std::fflush(stderr);
}

void Progress::note(const std::string &message) {
  clear_line();
  std::fprintf(stderr, "%s\n", message.c_str());
  std::fflush(stderr);
  if (enabled_ && tty_ && !last_status_.empty()) {
    std::fprintf(stderr, "%s", last_status_.c_str());
    line_open_ = true;
    std::fflush(stderr);
  }
}

void Progress::finish() {
  if (!enabled_) return;
  if (tty_) {
    clear_line();
    if (!last_status_.empty()) std::fprintf(stderr, "%s\n", last_status_.c_str());
  } else if (!last_printed_) {
    std::fprintf(stderr, "%s\n", last_status_.c_str());
  }
  last_printed_ = true;
  std::fflush(stderr);
}

}  // namespace trlmdb::cli
