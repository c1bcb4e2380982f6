// hv-vss-hold: keeps a database quiesced for as long as a systemd hook unit is active. It runs the
// database's own client as a child, sends the lock statement, tells systemd READY=1 once the
// client confirmed it, holds the session open, and on SIGTERM sends the unlock statement, waits
// for its confirmation and for the client to exit. Any failure ends the client (and with it the
// session, so the server drops the lock) and exits nonzero with a message naming the statement
// and what the client said. See docs/hv-vss-hold.1.
#include "agent/config.h"
#include "agent/version.h"
#include "tools/hv-vss-hold/child.h"
#include "tools/hv-vss-hold/notify.h"
#include "tools/hv-vss-hold/preset.h"
#include "tools/hv-vss-hold/say.h"
#include "tools/hv-vss-hold/session.h"

#include <sys/signalfd.h>
#include <CLI/CLI.hpp>
#include <cerrno>
#include <csignal>
#include <optional>

namespace hvvss::hold {
namespace {

constexpr const char* kDescription =
    "hv-vss-hold keeps a database quiesced while a Type=notify systemd unit is active: it runs the database's\n"
    "client, sends the lock statement, sends READY=1 once the client confirmed it, and on SIGTERM sends the\n"
    "unlock statement and waits for it.\n"
    "  hv-vss-hold [OPTIONS] mariadb|mysql|postgresql [CLIENT-ARGS...]\n"
    "  hv-vss-hold [OPTIONS] --lock SQL --unlock SQL -- CLIENT [CLIENT-ARGS...]";

constexpr const char* kFooter =
    "Presets (their statements can be replaced with --lock and --unlock, their client with --client):\n"
    "  mariadb     mariadb --batch --skip-column-names --unbuffered\n"
    "              [SET SESSION lock_wait_timeout = TIMEOUT+1;] BACKUP STAGE START; BACKUP STAGE BLOCK_COMMIT\n"
    "              / BACKUP STAGE END\n"
    "  mysql       mysql --batch --skip-column-names --unbuffered\n"
    "              [SET SESSION lock_wait_timeout = TIMEOUT+1;] FLUSH TABLES WITH READ LOCK / UNLOCK TABLES\n"
    "  postgresql  psql --no-psqlrc --quiet --no-align --tuples-only --no-password --set=ON_ERROR_STOP=1\n"
    "              SELECT pg_backup_start('hv-vss-hold', true) / SELECT lsn FROM pg_backup_stop(false)\n"
    "Exit status: 0 after the unlock was confirmed and the client exited 0; 1 on any failure (the client\n"
    "is killed, which ends its session and the lock); 2 for usage errors.";

struct Options {
  Request request;
  std::chrono::milliseconds unlock_timeout{30000};
};

int fail(const Status& status) {
  say("{}", status.message());
  return 1;
}

// SIGTERM and SIGINT arrive on a signalfd. They are blocked (so they queue for the signalfd) and
// ignored: a blocked signal is never discarded, and the client inherits the ignoring, so that a
// signal to the whole unit or process group stops only hv-vss-hold, which unlocks first.
Status catch_stop_signals(UniqueFd* fd) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  if (sigprocmask(SIG_BLOCK, &set, nullptr) != 0) return Status::from_errno(errno, "cannot block signals");
  for (int sig : {SIGTERM, SIGINT, SIGPIPE})
    if (std::signal(sig, SIG_IGN) == SIG_ERR) return Status::from_errno(errno, "cannot ignore signals");
  *fd = UniqueFd(signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK));
  return *fd ? Status::ok() : Status::from_errno(errno, "cannot make a signalfd");
}

int run(const Options& options) {
  Plan plan;
  if (Status s = make_plan(options.request, &plan); !s) return fail(s);
  UniqueFd signals;
  if (Status s = catch_stop_signals(&signals); !s) return fail(s);
  std::unique_ptr<ChildProcess> client;
  if (Status s = ChildProcess::spawn(plan.argv, plan.env, &client); !s) return fail(s);
  say("started {} (pid {})", fmt::join(plan.argv, " "), client->pid());
  std::string holding = fmt::format("holding: {} ({}, pid {})", plan.lock, client->name(), client->pid());
  Session session(std::move(client), signals.get());
  // Every failure from here ends the client: its session, and whatever the server held for it, end.
  auto abort = [&session](const Status& status) {
    session.abort();
    return fail(status);
  };
  if (Status s = session.confirm("lock", plan.lock, "locked", options.request.timeout, Session::OnSignal::Stop); !s)
    return abort(s);
  Notifier notifier;
  if (Status s = notifier.ready(holding); !s) return abort(s);
  if (Status s = session.hold(); !s) return abort(s);
  notifier.stopping(fmt::format("unlocking: {}", plan.unlock));
  if (Status s = session.confirm("unlock", plan.unlock, "unlocked", options.unlock_timeout, Session::OnSignal::Ignore);
      !s)
    return abort(s);
  if (Status s = session.close(options.unlock_timeout); !s) return fail(s);
  say("unlocked; the session is closed");
  return 0;
}

void add_duration(CLI::App& app, const std::string& flag, std::chrono::milliseconds* target, const std::string& help) {
  app.add_option_function<std::string>(
         flag,
         [flag, target](const std::string& text) {
           if (Status s = parse_duration(text, target); !s) throw CLI::ValidationError(flag, s.message());
         },
         help)
      ->option_text("DURATION");
}

// Parses the command line into `options`; returns the exit code when the program must stop.
std::optional<int> parse(int argc, char** argv, Options* options) {
  CLI::App app{kDescription, "hv-vss-hold"};
  app.footer(kFooter);
  app.add_option("--lock", options->request.lock, "The lock statement(s), instead of the preset's")->option_text("SQL");
  app.add_option("--unlock", options->request.unlock, "The unlock statement(s), instead of the preset's")
      ->option_text("SQL");
  app.add_option("--client", options->request.client,
                 "The client program, instead of the preset's (or the one after --)")
      ->option_text("PROGRAM");
  add_duration(app, "--timeout", &options->request.timeout,
               "How long the lock may take to be confirmed (default 10s; 500ms, 2min)");
  add_duration(app, "--unlock-timeout", &options->unlock_timeout,
               "How long the unlock, and then the client's exit, may each take (default 30s)");
  app.add_option("command", options->request.args, "After --: the client and its arguments (without a preset)")
      ->option_text("-- CLIENT [ARGS...]");
  std::vector<CLI::App*> preset_commands;
  for (const Preset& preset : presets()) {
    CLI::App* sub = app.add_subcommand(std::string(preset.name), fmt::format("The {} preset", preset.client));
    sub->prefix_command();  // everything after the preset's name goes to the client
    sub->set_help_flag();
    preset_commands.push_back(sub);
  }
  app.require_subcommand(0, 1);
  app.set_version_flag("--version", std::string("hv-vss-hold ") + HV_VSS_VERSION);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;  // --help and --version exit 0, every usage error 2
  }
  for (CLI::App* sub : preset_commands) {
    if (!sub->parsed()) continue;
    if (!options->request.args.empty()) {
      std::fprintf(stderr, "hv-vss-hold: a preset's client arguments go after its name, not after --\n");
      return 2;
    }
    options->request.preset = sub->get_name();
    options->request.args = sub->remaining();
  }
  return std::nullopt;
}

}  // namespace
}  // namespace hvvss::hold

int main(int argc, char** argv) {
  try {
    hvvss::hold::Options options;
    if (auto code = hvvss::hold::parse(argc, argv, &options)) return *code;
    return hvvss::hold::run(options);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "hv-vss-hold: fatal: %s\n", e.what());
    return 1;
  }
}
