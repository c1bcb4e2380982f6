#include "agent/log.h"

#include <spdlog/details/null_mutex.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <sys/uio.h>
#include <syslog.h>
#include <systemd/sd-journal.h>
#include <array>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <memory>
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
// journald, a pipe nobody reads). Unlike spdlog's thread pool, which polls its queue every 10 s,
// the writer sleeps until there is a line: an idle agent never wakes up. At shutdown the writer
// gets kDrainLimit to write what is queued; a writer still stuck then is abandoned with the rest.
class AsyncSink final : public spdlog::sinks::base_sink<spdlog::details::null_mutex> {
 public:
  AsyncSink(spdlog::sink_ptr target, size_t capacity)
      : queue_(std::make_shared<Queue>(std::move(target), capacity)), thread_([queue = queue_] { queue->run(); }) {}
  ~AsyncSink() override { (void)close(); }

  // Ends the writer once it has written what is queued, waiting at most kDrainLimit; false when
  // it is stuck and was abandoned with the lines it had not written.
  bool close() {
    if (!thread_.joinable()) return !abandoned_;
    {
      std::unique_lock lock(queue_->mutex);
      queue_->stop = true;
      queue_->wake.notify_one();
      abandoned_ = !queue_->finished.wait_for(lock, kDrainLimit, [this] { return queue_->done; });
      if (abandoned_) queue_->lines.clear();
    }
    // An abandoned writer shares the queue, so it touches no freed memory if its write ever
    // returns; it then ends.
    if (abandoned_)
      thread_.detach();
    else
      thread_.join();
    return !abandoned_;
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    {
      std::lock_guard lock(queue_->mutex);
      if (queue_->lines.size() == queue_->capacity) queue_->lines.pop_front();
      queue_->lines.push_back({msg.time, msg.level, std::string(msg.payload.data(), msg.payload.size())});
    }
    queue_->wake.notify_one();
  }
  void flush_() override {}

 private:
  static constexpr std::chrono::seconds kDrainLimit{1};

  struct Line {
    spdlog::log_clock::time_point time;
    spdlog::level::level_enum level;
    std::string text;
  };

  // Shared by the sink and its writer, so that an abandoned writer never touches freed memory.
  struct Queue {
    Queue(spdlog::sink_ptr target, size_t capacity) : target(std::move(target)), capacity(capacity) {}

    void run() {
      std::unique_lock lock(mutex);
      for (;;) {
        wake.wait(lock, [this] { return stop || !lines.empty(); });
        if (lines.empty()) break;
        Line line = std::move(lines.front());
        lines.pop_front();
        lock.unlock();
        target->log(spdlog::details::log_msg(line.time, {}, "hv-vss-agent", line.level, line.text));
        lock.lock();
      }
      done = true;
      finished.notify_one();
    }

    spdlog::sink_ptr target;
    size_t capacity;
    std::mutex mutex;
    std::condition_variable wake, finished;
    std::deque<Line> lines;
    bool stop = false;  // no more lines will come
    bool done = false;  // the writer has written the last line
  };

  std::shared_ptr<Queue> queue_;
  std::thread thread_;
  bool abandoned_ = false;
};

// The agent's one AsyncSink, for shutdown().
std::shared_ptr<AsyncSink>& async_sink() {
  static std::shared_ptr<AsyncSink> sink;
  return sink;
}

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
  async_sink() = std::make_shared<AsyncSink>(sink, 256);
  auto logger = std::make_shared<spdlog::logger>("hv-vss-agent", async_sink());
  logger->set_level(level);
  spdlog::set_default_logger(logger);
}

bool shutdown() {
  spdlog::shutdown();
  bool complete = !async_sink() || async_sink()->close();
  async_sink().reset();
  return complete;
}

}  // namespace logging
}  // namespace hvvss
