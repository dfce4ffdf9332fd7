// A one-line progress display on stderr: redrawn in place (at most ten times
// a second) on a terminal; when forced on another stream (--progress), one
// line a second. Disabled, it prints nothing but notes.
#pragma once

#include <chrono>
#include <string>

namespace trlmdb::cli {

class Progress {
 public:
  // `force`: show progress even when stderr is not a terminal.
  explicit Progress(bool force);
  ~Progress();

  bool enabled() const { return enabled_; }
  // Replaces the status line (throttled; `now` forces a redraw).
  void update(const std::string &status, bool now = false);
  // A permanent message on stderr (warnings), printed even when disabled.
  void note(const std::string &message);
  // Prints the last status for good and ends the line.
  void finish();

 private:
  void clear_line();

  bool tty_;
  bool enabled_;
  bool line_open_ = false;  // a status line is on screen without a newline
  std::string last_status_;
  bool last_printed_ = true;
  std::chrono::steady_clock::time_point last_draw_{};
};

}  // namespace trlmdb::cli
