#include "tools/hv-vss-hold/session.h"

#include "tools/hv-vss-hold/say.h"

#include <poll.h>
#include <sys/signalfd.h>
#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

namespace hvvss::hold {
namespace {

constexpr size_t kRemembered = 4;  // stderr lines quoted in a failure's message

std::string_view trimmed(std::string_view sql) {
  size_t end = sql.find_last_not_of(" \t\r\n;");
  return end == std::string_view::npos ? std::string_view() : sql.substr(0, end + 1);
}

std::string describe(std::chrono::milliseconds d) {
  return d.count() % 1000 == 0 ? fmt::format("{}s", d.count() / 1000) : fmt::format("{}ms", d.count());
}

int poll_timeout(std::optional<Clock::time_point> deadline) {
  if (!deadline) return -1;
  auto left = std::chrono::ceil<std::chrono::milliseconds>(*deadline - Clock::now()).count();
  return static_cast<int>(std::clamp<long long>(left, 0, 24LL * 3600 * 1000));
}

}  // namespace

bool looks_like_error(std::string_view line) {
  for (std::string_view word : {"ERROR", "FATAL"})
    if (line.starts_with(word) || line.find(fmt::format(": {}", word)) != std::string_view::npos) return true;
  return line.find(": error:") != std::string_view::npos;
}

Status Session::confirm(std::string_view what, std::string_view sql, std::string_view word,
                        std::chrono::milliseconds timeout, OnSignal on_signal) {
  std::string statement(trimmed(sql));
  std::string marker = fmt::format("hv-vss-hold:{}", word);
  auto deadline = Clock::now() + timeout;
  say("{}: {}", what, statement);
  Status sent = client_->send(fmt::format("{};\nSELECT CONCAT('hv-vss-hold:', '{}');\n", statement, word));
  // A client that closed its stdin has exited or is about to: wait for that, and say why.
  Wake wake = sent ? wait(marker, deadline, on_signal) : wait(std::nullopt, deadline, OnSignal::Ignore);
  switch (wake) {
    case Wake::Confirmed: say("{}: confirmed", what); return {};
    case Wake::Signalled: return Status::errorf("stopped before the {} statement ({}) was confirmed", what, statement);
    case Wake::Exited:
      return Status::errorf("{} statement failed ({}): {} {}; it said: {}", what, statement, client_->name(), exit_how_,
                            what_the_client_said());
    case Wake::Failed: return Status::errorf("{} statement failed ({}): {}", what, statement, what_the_client_said());
    case Wake::TimedOut:
      return Status::errorf("{} statement not confirmed within {} ({}); {} said: {}", what, describe(timeout),
                            statement, client_->name(), what_the_client_said());
  }
  return Status::error("unreachable");
}

Status Session::hold() {
  switch (wait(std::nullopt, std::nullopt, OnSignal::Stop)) {
    case Wake::Signalled: return {};
    case Wake::Exited:
      return Status::errorf("{} {} while holding the lock (the lock ended with its session); it said: {}",
                            client_->name(), exit_how_, what_the_client_said());
    default:
      return Status::errorf("{} reported an error while holding the lock: {}", client_->name(), what_the_client_said());
  }
}

Status Session::close(std::chrono::milliseconds timeout) {
  client_->close_stdin();
  auto deadline = Clock::now() + timeout;
  while (!client_->reaped()) {
    Wake wake = wait(std::nullopt, deadline, OnSignal::Ignore);
    if (wake == Wake::TimedOut) {
      abort();
      return Status::errorf("{} did not exit within {} of the end of its input: killed", client_->name(),
                            describe(timeout));
    }
  }
  if (exited_ok_) return {};
  return Status::errorf("{} {} at the end of the session; it said: {}", client_->name(), exit_how_,
                        what_the_client_said());
}

void Session::abort() {
  if (client_->reaped()) return;
  client_->kill();
  exited_ok_ = client_->reap(&exit_how_);
}

Session::Wake Session::wait(std::optional<std::string_view> marker, std::optional<Clock::time_point> deadline,
                            OnSignal on_signal) {
  for (;;) {
    std::vector<pollfd> fds{{signals_, POLLIN, 0}};
    if (stdout_open_) fds.push_back({client_->stdout_fd(), POLLIN, 0});
    if (stderr_open_) fds.push_back({client_->stderr_fd(), POLLIN, 0});
    if (!client_->reaped()) fds.push_back({client_->pidfd(), POLLIN, 0});
    int r = poll(fds.data(), fds.size(), poll_timeout(deadline));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      remember(fmt::format("hv-vss-hold: poll failed: {}", std::strerror(errno)), true);
      return Wake::Failed;
    }
    if (r == 0) return Wake::TimedOut;
    if (fds[0].revents) {
      signalfd_siginfo info{};
      if (read(signals_, &info, sizeof info) == sizeof info) {
        say("received SIG{}", sigabbrev_np(static_cast<int>(info.ssi_signo)));
        if (on_signal == OnSignal::Stop) return Wake::Signalled;
      }
    }
    if (drain_stdout(marker)) return Wake::Confirmed;
    if (drain_stderr()) return Wake::Failed;
    if (!client_->reaped() && fds.back().revents) {
      // It has exited: what it wrote before is all in the pipes now.
      exited_ok_ = client_->reap(&exit_how_);
      return Wake::Exited;
    }
  }
}

bool Session::drain_stdout(std::optional<std::string_view> marker) {
  bool seen = false;
  if (stdout_open_) read_pipe(client_->stdout_fd(), &stdout_open_, &stdout_lines_);
  while (!seen) {
    std::optional<std::string> line = stdout_lines_.next();
    if (!line) break;
    if (marker && line->find(*marker) != std::string::npos)
      seen = true;
    else
      say("{}: {}", client_->name(), *line);
  }
  return seen;
}

bool Session::drain_stderr() {
  bool error = false;
  if (stderr_open_) read_pipe(client_->stderr_fd(), &stderr_open_, &stderr_lines_);
  while (std::optional<std::string> line = stderr_lines_.next()) {
    say("{}: {}", client_->name(), *line);
    bool is_error = looks_like_error(*line);
    error = error || is_error;
    remember(std::move(*line), is_error);
  }
  return error;
}

// Reads until the pipe is empty (it is non-blocking) or at its end.
void Session::read_pipe(int fd, bool* open, LineSplitter* lines) {
  char buf[4096];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n > 0) {
      lines->feed(std::string_view(buf, static_cast<size_t>(n)));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return;
    *open = false;  // EOF, or an error that ends this pipe just the same
    lines->finish();
    return;
  }
}

void Session::remember(std::string line, bool is_error) {
  if (line.empty()) return;
  std::deque<std::string>& lines = is_error ? errors_ : said_;
  lines.push_back(std::move(line));
  if (lines.size() > kRemembered) lines.pop_front();
}

// Its error lines if it printed any (mariadb puts the failed query around them), else its last lines.
std::string Session::what_the_client_said() const {
  const std::deque<std::string>& lines = errors_.empty() ? said_ : errors_;
  if (lines.empty()) return "nothing";
  std::string text;
  for (const auto& line : lines) text += (text.empty() ? "" : " | ") + line;
  return text;
}

}  // namespace hvvss::hold
