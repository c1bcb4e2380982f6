#include "agent/log.h"

#include <spdlog/details/null_mutex.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <sys/uio.h>
#include <syslog.h>
#include <systemd/sd-journal.h>
#include <array>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>

namespace hvvss {

std::optional<ParsedTag> parse_tag(std::string_view line) {
  if (!line.starts_with("[txn=")) return std::nullopt;
  auto close = line.find("] ");
  if (close == std::string_view::npos) return std::nullopt;
  std::string_view inner = line.substr(1, close - 1);
  ParsedTag tag;
  while (!inner.empty()) {
    auto space = inner.find(' ');
    std::string_view field = inner.substr(0, space);
    auto eq = field.find('=');
    if (eq == std::string_view::npos) return std::nullopt;
    std::string value(field.substr(eq + 1));
    std::string_view key = field.substr(0, eq);
    if (key == "txn")
      tag.txn = value;
    else if (key == "op")
      tag.op = value;
    else if (key == "phase")
      tag.phase = value;
    else
      return std::nullopt;
    inner = space == std::string_view::npos ? std::string_view{} : inner.substr(space + 1);
  }
  tag.rest = line.substr(close + 2);
  return tag;
}

namespace logging {
namespace {

// Sends each line to journald with a priority and the transaction fields.
class JournalSink final : public spdlog::sinks::base_sink<std::mutex> {
 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    static constexpr std::array<int, 7> kPriority = {LOG_DEBUG, LOG_DEBUG, LOG_INFO, LOG_WARNING,
                                                     LOG_ERR,   LOG_CRIT,  LOG_INFO};
    std::string_view text(msg.payload.data(), msg.payload.size());
    auto tag = parse_tag(text);
    std::string fields[5] = {
        fmt::format("MESSAGE={}", text),
        fmt::format("PRIORITY={}", kPriority[static_cast<size_t>(msg.level)]),
    };
    size_t n = 2;
    if (tag) {
      fields[n++] = "HV_VSS_TXN=" + tag->txn;
      fields[n++] = "HV_VSS_OP=" + tag->op;
      fields[n++] = "HV_VSS_PHASE=" + tag->phase;
    }
    iovec iov[5];
    for (size_t i = 0; i < n; ++i) iov[i] = {fields[i].data(), fields[i].size()};
    if (int r = sd_journal_sendv(iov, static_cast<int>(n)); r < 0)
      fmt::print(stderr, "hv-vss-agent: journald did not take a line ({}): {}\n", std::strerror(-r), text);
  }
  void flush_() override {}
};

// Hands lines to a writer thread through a bounded queue; when it is full the oldest line is
// dropped, so a caller never waits, whatever the target blocks on (a frozen log file, a stalled
// journald). Unlike spdlog's thread pool, which polls its queue every 10 s, the writer sleeps
// until there is a line: an idle agent never wakes up.
class AsyncSink final : public spdlog::sinks::base_sink<spdlog::details::null_mutex> {
 public:
  AsyncSink(spdlog::sink_ptr target, size_t capacity)
      : target_(std::move(target)), capacity_(capacity), thread_([this] { run(); }) {}
  ~AsyncSink() override {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    wake_.notify_one();
    thread_.join();  // drains what is queued first
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    {
      std::lock_guard lock(mutex_);
      if (queue_.size() == capacity_) queue_.pop_front();
      queue_.push_back({msg.time, msg.level, std::string(msg.payload.data(), msg.payload.size())});
    }
    wake_.notify_one();
  }
  void flush_() override {}

 private:
  struct Line {
    spdlog::log_clock::time_point time;
    spdlog::level::level_enum level;
    std::string text;
  };

  void run() {
    std::unique_lock lock(mutex_);
    for (;;) {
      wake_.wait(lock, [this] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;
      Line line = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();
      target_->log(spdlog::details::log_msg(line.time, {}, "hv-vss-agent", line.level, line.text));
      lock.lock();
    }
  }

  spdlog::sink_ptr target_;
  size_t capacity_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Line> queue_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace

Target detect_target() {
  return (std::getenv("JOURNAL_STREAM") || std::getenv("INVOCATION_ID")) ? Target::Journal : Target::Stderr;
}

std::optional<spdlog::level::level_enum> parse_level(std::string_view name) {
  for (auto level : {spdlog::level::trace, spdlog::level::debug, spdlog::level::info, spdlog::level::warn,
                     spdlog::level::err, spdlog::level::critical, spdlog::level::off}) {
    auto sv = spdlog::level::to_string_view(level);
    if (name == std::string_view(sv.data(), sv.size())) return level;
  }
  if (name == "warning") return spdlog::level::warn;
  if (name == "error") return spdlog::level::err;
  return std::nullopt;
}

void init(spdlog::level::level_enum level, Target target) {
  spdlog::sink_ptr sink;
  if (target == Target::Journal) {
    sink = std::make_shared<JournalSink>();
  } else {
    sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    sink->set_pattern("%Y-%m-%d %H:%M:%S.%e hv-vss-agent[%P] %l: %v");
  }
  // 256 lines of head-room: the frozen window logs a handful.
  auto logger = std::make_shared<spdlog::logger>("hv-vss-agent", std::make_shared<AsyncSink>(sink, 256));
  logger->set_level(level);
  spdlog::set_default_logger(logger);
}

void shutdown() { spdlog::shutdown(); }

}  // namespace logging
}  // namespace hvvss
