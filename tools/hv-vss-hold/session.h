// The conversation with the database client: a statement goes to its stdin followed by a marker
// query, SELECT CONCAT('hv-vss-hold:', 'locked'), and the statement counts as done once the
// marker's value (hv-vss-hold:locked) appears on the client's stdout. The query's own text never
// contains that value, so a client that echoes its input cannot fake it. The client exiting, an
// error line on its stderr, the deadline or a stop signal end a wait instead. Everything the client
// prints is passed on to hv-vss-hold's stderr (the journal), and its last error lines (or else its
// last stderr lines) go into the failure's message.
#pragma once

#include "agent/status.h"
#include "agent/unique_fd.h"
#include "tools/hv-vss-hold/child.h"
#include "tools/hv-vss-hold/lines.h"

#include <chrono>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace hvvss::hold {

using Clock = std::chrono::steady_clock;

// True for a client's stderr line that reports a failed statement or a lost connection: it starts
// with ERROR or FATAL (mariadb: "ERROR 1064 (42000) at line 1: ...", psql: "ERROR:  ..."), or has
// ": ERROR", ": FATAL" or ": error:" after a prefix ("psql:<stdin>:1: ERROR:  ...", "psql: error: ...").
bool looks_like_error(std::string_view line);

class Session {
 public:
  // `stop_signals`: a signalfd that becomes readable when hv-vss-hold is told to stop.
  Session(std::unique_ptr<ChildProcess> client, int stop_signals)
      : client_(std::move(client)), signals_(stop_signals) {}

  enum class OnSignal { Stop, Ignore };
  // Runs `sql` and waits for the marker `word` ("locked": hv-vss-hold:locked) until `timeout`;
  // `what` names the step in messages ("lock"). With OnSignal::Stop a stop signal fails the step.
  Status confirm(std::string_view what, std::string_view sql, std::string_view word, std::chrono::milliseconds timeout,
                 OnSignal on_signal);
  // Waits for a stop signal with the session open; fails if the client exits or reports an error.
  Status hold();
  // Closes the client's stdin and waits up to `timeout` for it to exit (then kills it); fails unless
  // it exited with status 0.
  Status close(std::chrono::milliseconds timeout);
  // Kills the client and reaps it: its session ends, and the server drops what it held.
  void abort();

 private:
  enum class Wake { Confirmed, Signalled, Exited, Failed, TimedOut };
  Wake wait(std::optional<std::string_view> marker, std::optional<Clock::time_point> deadline, OnSignal on_signal);
  // Reads what is there on the client's stdout or stderr; true when `marker` was printed.
  bool drain_stdout(std::optional<std::string_view> marker);
  bool drain_stderr();  // true when an error line came
  void read_pipe(int fd, bool* open, LineSplitter* lines);
  void remember(std::string line, bool is_error);
  std::string what_the_client_said() const;

  std::unique_ptr<ChildProcess> client_;
  int signals_;
  bool stdout_open_ = true, stderr_open_ = true;
  LineSplitter stdout_lines_, stderr_lines_;
  std::deque<std::string> said_, errors_;  // the client's last stderr lines, and its last error lines
  std::string exit_how_;                   // "exited with status 1", once it has exited
  bool exited_ok_ = false;
};

}  // namespace hvvss::hold
