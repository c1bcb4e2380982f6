// hv-vssctl: the administrator's view of hv-vss-agent over D-Bus. `status`, `writers` and
// `monitor` read (open to everyone); `test-snapshot` and `thaw` act (root). Each subcommand is one
// or two calls of io.github.hvvss.Agent1 (ctl_bus.h) and a rendering for people or, with --json,
// for machines (ctl_format.h).
#include "agent/config.h"
#include "agent/ctl_bus.h"
#include "agent/ctl_format.h"
#include "agent/version.h"

#include <fmt/format.h>
#include <systemd/sd-event.h>
#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <ctime>

namespace hvvss::ctl {
namespace {

constexpr const char* kDescription =
    "hv-vssctl shows and controls hv-vss-agent, the Hyper-V/Azure backup (VSS) agent, through its\n"
    "D-Bus interface io.github.hvvss.Agent1 on the system bus. Reading is open to every user;\n"
    "test-snapshot and thaw are for root.";
constexpr const char* kExitCodes =
    "Exit status: 0 success; 1 the snapshot or the call failed; 2 usage error;\n"
    "3 hv-vss-agent is not running (or the system bus cannot be reached). See hv-vssctl(8).";

uint64_t now_usec() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000 + static_cast<uint64_t>(ts.tv_nsec) / 1000;
}

// Writes `text` to stdout at once, so that a reader of a pipe sees each line as it happens.
void emit(const std::string& text) {
  std::fputs(text.c_str(), stdout);
  std::fflush(stdout);
}

int fail(const BusError& error) {
  std::fprintf(stderr, "hv-vssctl: %s\n", describe_error(error.name, error.message).c_str());
  return exit_code_for_error(error.name);
}

int fail_errno(int r, const char* what) {
  std::fprintf(stderr, "hv-vssctl: %s: %s\n", what, std::strerror(-r));
  return kExitFailed;
}

int show_status(AgentClient& agent, bool json) {
  AgentStatus status;
  if (auto e = agent.properties(&status.properties)) return fail(*e);
  if (auto e = agent.writers(&status.writers)) return fail(*e);
  emit(json ? status_json(status) + "\n" : format_status(status, now_usec()));
  return kExitOk;
}

int show_writers(AgentClient& agent, bool json) {
  std::vector<Writer> writers;
  if (auto e = agent.writers(&writers)) return fail(*e);
  emit(json ? writers_json(writers) + "\n" : format_writers(writers));
  return kExitOk;
}

int test_snapshot(AgentClient& agent, std::chrono::milliseconds hold, bool json) {
  std::string result;
  std::vector<Step> steps;
  auto hold_usec = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(hold).count());
  if (auto e = agent.test_snapshot(hold_usec, &result, &steps)) return fail(*e);
  emit(json ? snapshot_json(result, steps) + "\n" : format_snapshot(result, steps));
  return result == "HV_S_OK" ? kExitOk : kExitFailed;
}

int thaw(AgentClient& agent) {
  std::string done;
  if (auto e = agent.thaw(&done)) return fail(*e);
  emit(done + "\n");
  return kExitOk;
}

int on_stop_signal(sd_event_source* source, const signalfd_siginfo*, void*) {
  return sd_event_exit(sd_event_source_get_event(source), kExitOk);
}

// Prints one line per signal of the agent until SIGINT or SIGTERM (kExitOk) or until the bus
// connection drops (kExitNotRunning).
int monitor(AgentClient& agent, bool json) {
  sd_event* raw = nullptr;
  if (int r = sd_event_new(&raw); r < 0) return fail_errno(r, "cannot create the event loop");
  std::unique_ptr<sd_event, decltype(&sd_event_unref)> loop(raw, &sd_event_unref);
  sigset_t mask;
  sigemptyset(&mask);
  for (int sig : {SIGINT, SIGTERM}) sigaddset(&mask, sig);
  if (int r = -pthread_sigmask(SIG_BLOCK, &mask, nullptr); r < 0) return fail_errno(r, "cannot block signals");
  for (int sig : {SIGINT, SIGTERM})
    if (int r = sd_event_add_signal(loop.get(), nullptr, sig, &on_stop_signal, nullptr); r < 0)
      return fail_errno(r, "cannot handle signals");

  auto print = [json](const auto& event) {
    uint64_t now = now_usec();
    emit((json ? event_json(event, now) : format_event(event, now)) + "\n");
  };
  sd_event* event_loop = loop.get();
  EventSink sink{print, print, print, [event_loop] {
                   std::fprintf(stderr, "hv-vssctl: the system bus connection dropped\n");
                   sd_event_exit(event_loop, kExitNotRunning);
                 }};
  if (auto e = agent.subscribe(std::move(sink))) return fail(*e);
  if (int r = sd_bus_attach_event(agent.bus(), loop.get(), SD_EVENT_PRIORITY_NORMAL); r < 0)
    return fail_errno(r, "cannot attach the bus to the event loop");
  std::fprintf(stderr, "Monitoring %s; Ctrl-C to stop.\n", kBusName);
  int r = sd_event_loop(loop.get());
  sd_bus_detach_event(agent.bus());
  return r < 0 ? fail_errno(r, "the event loop failed") : r;
}

// A subcommand: `summary` in the list of subcommands, `details` above the exit codes in its --help.
CLI::App* add_command(CLI::App& app, const std::string& name, const std::string& summary, const std::string& details) {
  CLI::App* command = app.add_subcommand(name, summary);
  command->footer(details + "\n\n" + kExitCodes);
  return command;
}

int run(int argc, char** argv) {
  CLI::App app{kDescription, "hv-vssctl"};
  app.footer(kExitCodes);
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("hv-vssctl ") + HV_VSS_VERSION);
  bool json = false;
  const char* json_help = "Print JSON instead of text";

  CLI::App* status =
      add_command(app, "status", "Show the agent's state, its last transaction and the registered writers",
                  "The state (idle, checking, freezing, frozen, thawing), since when filesystems are frozen,\n"
                  "the current transaction, the last finished one with each participant's steps, and the\n"
                  "registered writers. --json keys: state, frozen_since_usec, transaction_id,\n"
                  "last_transaction, last_transaction_steps, writers.");
  status->add_flag("--json", json, json_help);
  CLI::App* monitor_command =
      add_command(app, "monitor", "Follow the agent's transactions live, one line per event",
                  "Prints a line for every PhaseChanged, TransactionFinished and PropertiesChanged signal of the\n"
                  "agent until SIGINT or SIGTERM (exit 0) or until the bus connection drops (exit 3). Once\n"
                  "\"Monitoring ...\" is on stderr, no signal is missed.");
  monitor_command->add_flag("--json", json, "Print one JSON object per line, with an \"event\" key");
  CLI::App* writers =
      add_command(app, "writers", "List the registered writers",
                  "Writers are applications that the agent asks to quiesce before filesystems freeze and to\n"
                  "resume after they thaw. A required writer's failure vetoes the snapshot.");
  writers->add_flag("--json", json, json_help);
  CLI::App* test = add_command(app, "test-snapshot", "Check, freeze, hold and thaw as a host backup would (root)",
                               "Runs a whole snapshot through the agent's engine without the host and prints each\n"
                               "participant's steps. Refused while a host backup runs. Exit status 1 when the\n"
                               "result is HV_E_FAIL.");
  std::chrono::milliseconds hold{1000};
  test->add_option("--hold", "How long to stay frozen: 2s, 500ms, 1min, or seconds (default 1s)")
      ->type_name("DURATION")
      ->check([&hold](const std::string& text) {
        Status s = parse_duration(text, &hold);
        return s ? std::string() : s.message();
      });
  test->add_flag("--json", json, json_help);
  CLI::App* thaw_command = add_command(app, "thaw", "Thaw everything the agent froze, at once (root)",
                                       "An emergency thaw; prints what it did. A host backup that this thaw tears is\n"
                                       "answered HV_E_FAIL at its THAW.");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? kExitOk : kExitUsage;  // --help and --version exit 0, every usage error 2
  }

  std::unique_ptr<AgentClient> agent;
  if (auto e = AgentClient::connect(&agent)) return fail(*e);
  if (status->parsed()) return show_status(*agent, json);
  if (monitor_command->parsed()) return monitor(*agent, json);
  if (writers->parsed()) return show_writers(*agent, json);
  if (test->parsed()) return test_snapshot(*agent, hold, json);
  if (thaw_command->parsed()) return thaw(*agent);
  return kExitUsage;
}

}  // namespace
}  // namespace hvvss::ctl

int main(int argc, char** argv) {
  try {
    return hvvss::ctl::run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "hv-vssctl: fatal: %s\n", e.what());
    return hvvss::ctl::kExitFailed;
  }
}
