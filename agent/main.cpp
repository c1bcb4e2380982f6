// hv-vss-agent's entry point: reads the options and the configuration, sets up logging and
// signals, makes the built-in plugins' participants and runs the manager on the sd-event loop.
// Until the configuration is read, SIGTERM and SIGINT keep their default action, so a start-up
// that hangs on a bad input can always be stopped.
#include "agent/agent_settings.h"
#include "agent/log.h"
#include "agent/manager.h"
#include "agent/version.h"
#include "plugins/builtin.h"

#include <systemd/sd-event.h>
#include <csignal>
#include <cstdio>
#include <cstdlib>

namespace hvvss {
namespace {

constexpr const char* kDescription =
    "hv-vss-agent answers Hyper-V/Azure backup requests (VSS) for this Linux guest: it checks that a snapshot\n"
    "can be taken, brings applications and filesystems to a consistent state (FIFREEZE), and thaws them\n"
    "when the host's snapshot is taken - always within the reply budget, never leaving anything frozen.\n"
    "Settings come from /etc/hv-vss/agent.conf and agent.conf.d/*.conf; each option below overrides its key.";

int on_signal(sd_event_source*, const signalfd_siginfo* info, void* userdata) {
  if (info->ssi_signo == SIGHUP) {
    spdlog::info("SIGHUP ignored: restart the service to apply configuration changes");
    return 0;
  }
  static_cast<Manager*>(userdata)->stop();
  return 0;
}

// Runs the daemon on a configured system, on `loop`; returns the exit code.
int serve(sd_event* loop, const AgentSettings& agent, std::vector<std::unique_ptr<Plugin>>& plugins) {
  BusService bus(loop);
  std::vector<std::unique_ptr<Participant>> participants;
  for (auto& plugin : plugins) {
    if (Status s = plugin->make({loop, agent.runtime_dir, &bus}, &participants); !s) {
      spdlog::critical("{}: {}", plugin->name(), s.message());
      return 1;
    }
  }
  Manager manager(loop, {agent.device, agent.runtime_dir, {agent.reply_budget, agent.auto_thaw}},
                  std::move(participants), &bus);
  int r = 0;
  for (int sig : {SIGTERM, SIGINT, SIGHUP})
    if (r >= 0) r = sd_event_add_signal(loop, nullptr, sig, &on_signal, &manager);
  if (r < 0) {
    spdlog::critical("cannot handle signals: {}", std::strerror(-r));
    return 1;
  }
  if (Status s = manager.start(); !s) {
    spdlog::critical("{}", s.message());
    return 1;
  }
  spdlog::info("hv-vss-agent {} running; reply budget {} ms, auto-thaw {} ms", HV_VSS_VERSION,
               agent.reply_budget.count(), agent.auto_thaw.count());
  r = sd_event_loop(loop);
  if (r < 0) spdlog::critical("the event loop failed: {}", std::strerror(-r));
  return r < 0 ? 1 : r;
}

int run(int argc, char** argv) {
  AgentSettings agent;
  ConfigSchema schema;
  agent.declare(schema);
  auto plugins = builtin_plugins();
  for (auto& plugin : plugins) plugin->declare(schema);
  if (auto code = configure(schema, argc, argv,
                            {"hv-vss-agent", kDescription, std::string("hv-vss-agent ") + HV_VSS_VERSION,
                             std::string(kDefaultConfigPath), "Durations: 15, 15s, 500ms, 2min. See hv-vss-agent(8)."}))
    return *code;

  // From here on signals are the loop's: block them before any thread exists.
  sigset_t mask;
  sigemptyset(&mask);
  for (int sig : {SIGTERM, SIGINT, SIGHUP}) sigaddset(&mask, sig);
  pthread_sigmask(SIG_BLOCK, &mask, nullptr);
  signal(SIGPIPE, SIG_IGN);
  logging::init(agent.log_level, logging::detect_target());
  sd_event* loop = nullptr;
  int code = 1;
  if (int r = sd_event_default(&loop); r < 0) {
    spdlog::critical("cannot create the event loop: {}", std::strerror(-r));
  } else {
    code = serve(loop, agent, plugins);
    sd_event_unref(loop);
  }
  if (!logging::shutdown()) std::_Exit(code);  // everything is done but the stuck log writer
  return code;
}

}  // namespace
}  // namespace hvvss

int main(int argc, char** argv) {
  try {
    return hvvss::run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "hv-vss-agent: fatal: %s\n", e.what());
    return 1;
  }
}
