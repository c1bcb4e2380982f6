// hv-vss-agent: answers the Hyper-V host's VSS requests (HOT_BACKUP, FREEZE, THAW) through the
// transaction engine. This file wires the pieces together: options and configuration, logging,
// crash recovery from the intent record, the sd-event loop, and the channel to the kernel with
// reconnection after errors.
#include "agent/config.h"
#include "agent/device.h"
#include "agent/intent.h"
#include "agent/log.h"
#include "agent/transaction.h"
#include "agent/version.h"
#include "plugins/fsfreeze/fsfreeze.h"

#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>
#include <CLI/CLI.hpp>
#include <csignal>
#include <iostream>

namespace hvvss {
namespace {

constexpr uint64_t kMinBackoffUsec = 100'000;
constexpr uint64_t kMaxBackoffUsec = 5'000'000;

// Owns the channel: reads requests, hands them to the engine, writes replies, and when the
// channel fails, has the engine thaw and reconnects with exponential backoff.
class Agent {
 public:
  // `device` is open and registered.
  Agent(sd_event* loop, AgentConfig config, Plugin& fs, Device device)
      : loop_(loop),
        config_(std::move(config)),
        device_(std::move(device)),
        engine_(loop, {&fs}, EngineSettings{config_.reply_budget, config_.auto_thaw}) {
    on_registered();
  }
  ~Agent() {
    sd_event_source_disable_unref(io_);
    sd_event_source_disable_unref(reconnect_);
  }

  void stop() {
    spdlog::info("stopping");
    engine_.stop([this] { sd_event_exit(loop_, 0); });
  }

 private:
  void on_registered() {
    backoff_usec_ = kMinBackoffUsec;
    sd_event_source_disable_unref(io_);
    io_ = nullptr;
    sd_event_add_io(loop_, &io_, device_.fd(), EPOLLIN, &Agent::on_io, this);
    ++generation_;
    spdlog::info("registered on {} (kernel VSS version {})", config_.device, device_.kernel_version());
    sd_notifyf(0, "READY=1\nSTATUS=Registered on %s; idle", config_.device.c_str());
  }

  static int on_io(sd_event_source*, int, uint32_t revents, void* userdata) {
    auto* self = static_cast<Agent*>(userdata);
    if (revents & EPOLLIN) {
      std::vector<std::byte> bytes;
      std::string error;
      switch (self->device_.read(bytes, error)) {
        case Device::ReadResult::Frame: self->on_frame(bytes); return 0;
        case Device::ReadResult::Nothing: return 0;
        case Device::ReadResult::Lost: self->lose_channel(error); return 0;
      }
    }
    if (revents & (EPOLLHUP | EPOLLERR)) self->lose_channel("the driver closed the channel (POLLHUP)");
    return 0;
  }

  void on_frame(std::span<const std::byte> bytes) {
    DecodeError error;
    auto request = decode_request(bytes, error);
    uint64_t generation = generation_;
    auto reply = [this, generation](uint8_t op, HvStatus status) { send_reply(generation, op, status); };
    if (!request) {
      // The kernel waits for a reply to whatever it queued: answer it, then start afresh, as
      // the channel is out of step with us.
      spdlog::error("bad frame from the kernel: {}; answering HV_E_FAIL", error.message);
      reply(bytes.empty() ? 0 : static_cast<uint8_t>(bytes[0]), HvStatus::Fail);
      lose_channel("bad frame");
      return;
    }
    engine_.handle(request->op, reply);
  }

  void send_reply(uint64_t generation, uint8_t op, HvStatus status) {
    if (generation != generation_ || !device_.is_open()) return;  // that channel is gone
    std::string error;
    if (!device_.write(encode_reply(op, status), error)) {
      lose_channel(fmt::format("reply to {} not delivered: {}", op_name(op), error));
      return;
    }
    sd_notifyf(0, "STATUS=Last request %s answered %s; %s", std::string(op_name(op)).c_str(),
               std::string(status_name(status)).c_str(), std::string(state_name(engine_.state())).c_str());
  }

  void lose_channel(std::string_view why) {
    if (!device_.is_open()) return;
    spdlog::warn("channel lost: {}; reconnecting", why);
    sd_event_source_disable_unref(io_);
    io_ = nullptr;
    device_.close();
    ++generation_;
    engine_.abandon("channel to the host lost");
    sd_notify(0, "STATUS=Channel lost; reconnecting");
    schedule_reconnect();
  }

  void schedule_reconnect() {
    uint64_t now = 0;
    sd_event_now(loop_, CLOCK_MONOTONIC, &now);
    if (!reconnect_) {
      sd_event_add_time(loop_, &reconnect_, CLOCK_MONOTONIC, now + backoff_usec_, 0, &Agent::on_reconnect, this);
    } else {
      sd_event_source_set_time(reconnect_, now + backoff_usec_);
      sd_event_source_set_enabled(reconnect_, SD_EVENT_ONESHOT);
    }
    backoff_usec_ = std::min(backoff_usec_ * 2, kMaxBackoffUsec);
  }

  static int on_reconnect(sd_event_source*, uint64_t, void* userdata) {
    auto* self = static_cast<Agent*>(userdata);
    if (auto e = self->device_.connect(self->config_.device); !e.empty()) {
      spdlog::debug("reconnect failed: {}", e);
      self->schedule_reconnect();
      return 0;
    }
    self->on_registered();
    return 0;
  }

  sd_event* loop_;
  AgentConfig config_;
  Device device_;
  TransactionEngine engine_;
  sd_event_source* io_ = nullptr;
  sd_event_source* reconnect_ = nullptr;
  uint64_t backoff_usec_ = kMinBackoffUsec;
  uint64_t generation_ = 0;  // replies for an older channel are dropped
};

int on_signal(sd_event_source*, const signalfd_siginfo* info, void* userdata) {
  auto* agent = static_cast<Agent*>(userdata);
  if (info->ssi_signo == SIGHUP) {
    spdlog::info("SIGHUP ignored: restart the service to apply configuration changes");
    return 0;
  }
  agent->stop();
  return 0;
}

// Parses the command line over the configuration files; returns an exit code, or -1 to go on.
int configure(int argc, char** argv, AgentConfig& config) {
  CLI::App app{
      "hv-vss-agent answers Hyper-V/Azure backup requests (VSS) for this Linux guest: it checks that a snapshot\n"
      "can be taken, brings applications and filesystems to a consistent state (FIFREEZE), and thaws them\n"
      "when the host's snapshot is taken - always within the reply budget, never leaving anything frozen.\n"
      "Settings come from /etc/hv-vss/agent.conf and agent.conf.d/*.conf; each option below overrides its key.",
      "hv-vss-agent"};
  std::string config_path(kDefaultConfigPath);
  app.add_option("--config", config_path, "Configuration file (drop-ins are read from FILE.d/*.conf)")
      ->default_val(std::string(kDefaultConfigPath));
  app.set_version_flag("--version", std::string("hv-vss-agent ") + HV_VSS_VERSION);
  app.footer("Durations: 15, 15s, 500ms, 2min. See hv-vss-agent(8).");
  const auto& table = settings();
  std::vector<std::vector<std::string>> values(table.size());
  std::vector<CLI::Option*> options;
  for (size_t i = 0; i < table.size(); ++i) {
    const Setting& s = table[i];
    auto* option =
        app.add_option(std::string(s.flag), values[i], fmt::format("{} (config: [{}] {}=)", s.help, s.section, s.key));
    option->type_name(std::string(s.placeholder));
    if (!s.list) option->expected(1);
    options.push_back(option);
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;  // --help and --version exit 0, every usage error 2
  }
  if (auto e = load_config(config_path, app.count("--config") > 0, config); !e.empty()) {
    std::cerr << "hv-vss-agent: configuration error: " << e << "\n";
    return 2;
  }
  for (size_t i = 0; i < table.size(); ++i) {
    if (options[i]->count() == 0) continue;
    if (table[i].list) table[i].apply(config, {});  // the command line replaces the file's list
    if (auto e = table[i].apply(config, values[i]); !e.empty()) {
      std::cerr << "hv-vss-agent: " << table[i].flag << ": " << e << "\n";
      return 2;
    }
  }
  return -1;
}

int run(int argc, char** argv) {
  // Signals are handled by the event loop; block them before any thread exists.
  sigset_t mask;
  sigemptyset(&mask);
  for (int sig : {SIGTERM, SIGINT, SIGHUP}) sigaddset(&mask, sig);
  pthread_sigmask(SIG_BLOCK, &mask, nullptr);
  signal(SIGPIPE, SIG_IGN);

  AgentConfig config;
  if (int code = configure(argc, argv, config); code >= 0) return code;
  logging::init(*logging::parse_level(config.log_level), logging::detect_target());

  // Open the channel first: a second daemon is refused here (EBUSY), before it can touch the
  // runtime directory. Then own the directory, thaw what a dead predecessor left frozen, and
  // only then register, so that no host request is read before the recovery.
  Device device;
  RuntimeLock lock;
  std::string error = device.open(config.device);
  if (error.empty()) error = lock.acquire(config.runtime_dir);
  if (!error.empty()) {
    spdlog::critical("{}", error);
    logging::shutdown();
    return 1;
  }
  fsfreeze::FsFreeze fs({config.filters}, IntentRecord(config.runtime_dir));
  if (Outcome recovered = fs.recover(); !recovered.detail.empty()) {
    if (recovered.ok)
      spdlog::warn("a previous agent left filesystems frozen; recovered: {}", recovered.detail);
    else
      spdlog::error("a previous agent left filesystems frozen; recovery incomplete: {}", recovered.detail);
  }
  if (auto e = device.register_with_kernel(); !e.empty()) {
    spdlog::critical("{}", e);
    logging::shutdown();
    return 1;
  }

  sd_event* loop = nullptr;
  if (int r = sd_event_default(&loop); r < 0) {
    spdlog::critical("cannot create the event loop: {}", std::strerror(-r));
    return 1;
  }
  int code = 0;
  {
    Agent agent(loop, config, fs, std::move(device));
    for (int sig : {SIGTERM, SIGINT, SIGHUP}) sd_event_add_signal(loop, nullptr, sig, &on_signal, &agent);
    spdlog::info("hv-vss-agent {} running; reply budget {} ms, auto-thaw {} ms", HV_VSS_VERSION,
                 config.reply_budget.count(), config.auto_thaw.count());
    code = sd_event_loop(loop) < 0 ? 1 : 0;
  }
  sd_event_unref(loop);
  logging::shutdown();
  return code;
}

}  // namespace
}  // namespace hvvss

int main(int argc, char** argv) {
  try {
    return hvvss::run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "hv-vss-agent: fatal: " << e.what() << "\n";
    return 1;
  }
}
