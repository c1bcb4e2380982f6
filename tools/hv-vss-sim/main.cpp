// hv-vss-sim: plays the Hyper-V host and the kernel's VSS device for a VSS daemon, so that
// hv-vss-agent (or the upstream hv_vss_daemon) can be tested without Hyper-V.
#include "agent/version.h"
#include "tools/hv-vss-sim/scenario.h"

#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <csignal>

namespace {

int run(int argc, char** argv) {
  using namespace hvvss::sim;
  std::string scenarios;
  for (const auto& [name, text] : scenario_help()) scenarios += fmt::format("\n  {:<24} {}", name, text);
  CLI::App app{
      "hv-vss-sim plays the Hyper-V host and the kernel's /dev/vmbus/hv_vss for a VSS daemon.\n"
      "It listens on a SOCK_SEQPACKET socket (point the daemon's --device at it), or presents a real\n"
      "character device through CUSE (--cuse: /dev/vmbus/hv_vss, the daemon's default), runs a scenario,\n"
      "prints one line per event (JSON, or a sentence with --format text), and exits 1 if any reply\n"
      "was missing, late or wrong, or if the daemon wrote anything the kernel would reject (a second\n"
      "reply, say).\n"
      "Scenarios:" +
          scenarios,
      "hv-vss-sim"};
  Options options;
  std::vector<std::string> expect;
  auto* socket = app.add_option("--socket", options.socket, "Socket path to listen on");
  app.add_flag("--cuse{vmbus/hv_vss}", options.cuse,
               "Present the device as /dev/NAME through CUSE (root, modprobe cuse); --cuse=NAME, "
               "default vmbus/hv_vss")
      ->excludes(socket);
  app.add_option("scenario", options.scenario, "Scenario to run")->default_val("backup");
  app.add_option("count", options.count, "Repetitions for 'repeat'")->default_val(1)->check(CLI::PositiveNumber);
  app.add_option("--hold", options.hold_sec, "Seconds between the FREEZE reply and THAW")->default_val(1.0);
  app.add_flag("--hold-stdin", options.hold_stdin, "Hold until a line (or EOF) arrives on stdin");
  app.add_flag("--start-stdin", options.start_stdin,
               "Once a daemon registered, wait for a line (or EOF) on stdin before the first request");
  app.add_option("--reply-budget", options.reply_budget_sec, "A reply later than this is a failure")->default_val(15.0);
  app.add_option("--freeze-timeout", options.freeze_timeout_sec, "Kernel timeout for FREEZE")->default_val(900.0);
  app.add_option("--timeout", options.timeout_sec, "Kernel timeout for HOT_BACKUP and THAW")->default_val(30.0);
  app.add_option("--wait-daemon", options.wait_daemon_sec, "Seconds to wait for a daemon to register")
      ->default_val(10.0);
  app.add_option("--reconnect-every", options.reconnect_every,
                 "With 'repeat': the driver goes away after every K backups and the daemon must register anew")
      ->default_val(0)
      ->check(CLI::NonNegativeNumber);
  app.add_option("--linger", options.linger_sec,
                 "Seconds to keep serving the device after the scenario; a write then (a second reply) fails it")
      ->default_val(0.1);
  app.add_option("--expect", expect, "Expected status for an operation, e.g. FREEZE=HV_E_FAIL (default HV_S_OK)");
  std::string format = "json";
  app.add_option("--format", format, "json: one JSON object per event (for machines); text: one sentence per event")
      ->check(CLI::IsMember({"json", "text"}))
      ->default_val("json");
  app.set_version_flag("--version", std::string("hv-vss-sim ") + HV_VSS_VERSION);
  try {
    app.parse(argc, argv);
    if (options.socket.empty() && options.cuse.empty()) throw CLI::RequiredError("--socket or --cuse");
    for (const auto& item : expect) {
      auto eq = item.find('=');
      if (eq == std::string::npos) throw CLI::ValidationError("--expect", "use OP=STATUS, e.g. FREEZE=HV_E_FAIL");
      options.expect[item.substr(0, eq)] = item.substr(eq + 1);
    }
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;  // --help and --version exit 0, every usage error 2
  }
  signal(SIGPIPE, SIG_IGN);
  Timeline timeline(format == "text" ? Timeline::Format::Text : Timeline::Format::Json);
  return run_scenario(options, timeline);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "hv-vss-sim: fatal: %s\n", e.what());
    return 2;
  }
}
