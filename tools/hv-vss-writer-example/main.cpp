// hv-vss-writer-example: an application taking part in hv-vss-agent's snapshots (a "writer"), as a
// template for yours and as the writer the test suite drives. The contract, in
// agent/dbus/io.github.hvvss.Writer1.xml:
//
//  1. Serve io.github.hvvss.Writer1 (Check, Freeze, Thaw, Abort; each carries the transaction id)
//     at an object of your own on the system bus.
//  2. Call io.github.hvvss.Agent1.RegisterWriter(object, name, {Required, TimeoutUSec}), and again
//     whenever an agent (re)appears: a registration lasts as long as both bus connections.
//  3. Check: can you take part now? Freeze: make your data consistent on disk (flush, fsync), stop
//     writing, then reply; the filesystems are frozen once every writer has replied. Thaw: resume
//     (the filesystems take writes again). Abort: the snapshot was given up; resume, no reply needed.
//     An error reply fails the phase, and so does no reply within TimeoutUSec: a required writer
//     vetoes the snapshot, an optional one is skipped.
//  4. Between your Freeze reply and Thaw or Abort, do not write to the filesystems: the write would
//     block. Keep serving the bus, though, so that Thaw and Abort get through.
#include "agent/config.h"
#include "agent/version.h"
#include "tools/hv-vss-writer-example/events.h"
#include "tools/hv-vss-writer-example/registration.h"
#include "tools/hv-vss-writer-example/writer.h"

#include <fmt/format.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>
#include <CLI/CLI.hpp>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>

namespace hvvss::writer {
namespace {

constexpr const char* kDescription =
    "hv-vss-writer-example is an application that takes part in hv-vss-agent's snapshots (a writer): it\n"
    "serves io.github.hvvss.Writer1 (Check, Freeze, Thaw, Abort) on the system bus ($DBUS_SYSTEM_BUS_ADDRESS\n"
    "if set), waits for the agent's name io.github.hvvss.Agent1 and calls RegisterWriter, again each time an\n"
    "agent appears. --check, --freeze and --thaw choose what each call does: ok replies (after flushing on\n"
    "Freeze and Thaw), fail replies io.github.hvvss.Error.WriterFailed, hang never replies (the writer keeps\n"
    "serving, so Abort still arrives).";

constexpr const char* kFooter =
    "Output, one line per event on stdout (mono_us: CLOCK_MONOTONIC in microseconds):\n"
    "  event=started bus_name=:1.5 object=PATH     serving Writer1\n"
    "  event=waiting agent=io.github.hvvss.Agent1  no agent on the bus yet\n"
    "  event=registered name=NAME object=PATH\n"
    "  event=call method=Freeze txn=5 mono_us=N action=ok|fail|hang   (at receipt)\n"
    "  event=replied method=Freeze txn=5 mono_us=N [error=NAME message=\"...\"]   (just before sending)\n"
    "  event=abort txn=5 mono_us=N\n"
    "  event=agent-gone                            the agent left; waiting for the next\n"
    "  event=error message=\"...\"\n"
    "Exit status: 0 on SIGTERM or SIGINT, 1 when the registration is refused (the error also goes to\n"
    "stderr as 'hv-vss-writer-example: ERROR-NAME: message') or the bus is lost, 2 for usage errors.";

struct Options {
  std::string name = "example";
  std::string object;
  Behaviour behaviour;
  bool optional = false;
  std::optional<uint64_t> timeout_usec;
  std::vector<std::string> flush_dirs;
};

struct EventUnref {
  void operator()(sd_event* e) const { sd_event_unref(e); }
};
struct BusUnref {
  void operator()(sd_bus* b) const { sd_bus_flush_close_unref(b); }
};

int fail(const Status& status) {
  std::fprintf(stderr, "hv-vss-writer-example: %s\n", status.message().c_str());
  return 1;
}

// SIGTERM and SIGINT leave the loop with exit code 0 (the default handler of sd_event_add_signal).
Status exit_on_signals(sd_event* loop) {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  if (sigprocmask(SIG_BLOCK, &signals, nullptr) != 0) return Status::from_errno(errno, "cannot block signals");
  for (int sig : {SIGTERM, SIGINT})
    if (int r = sd_event_add_signal(loop, nullptr, sig, nullptr, nullptr); r < 0)
      return Status::from_errno(-r, "cannot handle signals");
  return {};
}

int on_disconnected(sd_bus_message*, void* loop, sd_bus_error*) {
  print_fatal("org.freedesktop.DBus.Local.Disconnected", "lost the connection to the bus");
  return sd_event_exit(static_cast<sd_event*>(loop), 1);
}

// Runs the bus on the loop; losing the bus ends the loop with exit code 1.
Status attach(sd_bus* bus, sd_event* loop) {
  int r = sd_bus_match_signal(bus, nullptr, nullptr, "/org/freedesktop/DBus/Local", "org.freedesktop.DBus.Local",
                              "Disconnected", &on_disconnected, loop);
  if (r >= 0) r = sd_bus_attach_event(bus, loop, SD_EVENT_PRIORITY_NORMAL);
  return r < 0 ? Status::from_errno(-r, "cannot attach the bus to the event loop") : Status::ok();
}

int serve(const Options& options) {
  sd_event* loop_ptr = nullptr;
  if (int r = sd_event_default(&loop_ptr); r < 0) return fail(Status::from_errno(-r, "cannot create the event loop"));
  std::unique_ptr<sd_event, EventUnref> loop(loop_ptr);
  if (Status s = exit_on_signals(loop.get()); !s) return fail(s);
  sd_bus* bus_ptr = nullptr;
  if (int r = sd_bus_open_system(&bus_ptr); r < 0)
    return fail(Status::from_errno(-r, "cannot connect to the system bus"));
  std::unique_ptr<sd_bus, BusUnref> bus(bus_ptr);
  const char* unique_name = nullptr;
  if (int r = sd_bus_get_unique_name(bus.get(), &unique_name); r < 0)
    return fail(Status::from_errno(-r, "cannot connect to the system bus"));

  WriterObject writer(options.name, options.behaviour, options.flush_dirs);
  if (Status s = writer.publish(bus.get(), options.object); !s) return fail(s);
  if (Status s = attach(bus.get(), loop.get()); !s) return fail(s);
  print_event("started", {{"bus_name", unique_name}, {"object", options.object}});
  AgentRegistration registration(bus.get(), {options.object, options.name, !options.optional, options.timeout_usec});
  if (Status s = registration.start(); !s) return fail(s);
  int r = sd_event_loop(loop.get());
  return r < 0 ? fail(Status::from_errno(-r, "the event loop failed")) : r;
}

// Parses the command line into `options`; returns the exit code when the program must stop.
std::optional<int> parse(int argc, char** argv, Options* options) {
  CLI::App app{kDescription, "hv-vss-writer-example"};
  app.footer(kFooter);
  const std::map<std::string, Action> actions{{"ok", Action::Ok}, {"fail", Action::Fail}, {"hang", Action::Hang}};
  app.add_option("--name", options->name, "The writer's name, unique among the agent's writers (default: example)")
      ->check(CLI::Validator(
          [](std::string& name) {
            bool valid = name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") ==
                         std::string::npos;
            return valid ? std::string() : "use letters, digits, '_', '.' and '-'";
          },
          ""))
      ->option_text("NAME");
  app.add_option("--object", options->object,
                 "Object path to serve Writer1 at (default: /io/github/hvvss/WriterExample/ and the escaped name)")
      ->check(CLI::Validator(
          [](std::string& path) {
            return sd_bus_object_path_is_valid(path.c_str()) ? std::string() : "not a valid D-Bus object path";
          },
          ""))
      ->option_text("PATH");
  struct PhaseOption {
    const char* flag;
    Action* target;
    const char* method;
  };
  for (const PhaseOption& phase : {PhaseOption{"--check", &options->behaviour.check, "Check"},
                                   PhaseOption{"--freeze", &options->behaviour.freeze, "Freeze"},
                                   PhaseOption{"--thaw", &options->behaviour.thaw, "Thaw"}}) {
    std::string flag = phase.flag;
    Action* target = phase.target;
    app.add_option_function<std::string>(
           flag,
           [flag, target, &actions](const std::string& value) {
             auto it = actions.find(value);
             if (it == actions.end()) throw CLI::ValidationError(flag, "'" + value + "': use ok, fail or hang");
             *target = it->second;
           },
           fmt::format("What {} does: ok (the default), fail or hang", phase.method))
        ->option_text("ok|fail|hang");
  }
  app.add_flag("--optional", options->optional,
               "Register with Required=false: a failure skips this writer, never vetoes");
  app.add_option_function<std::string>(
         "--timeout",
         [options](const std::string& text) {
           std::chrono::milliseconds parsed{};
           if (Status s = parse_duration(text, &parsed); !s) throw CLI::ValidationError("--timeout", s.message());
           options->timeout_usec = std::chrono::duration_cast<std::chrono::microseconds>(parsed).count();
         },
         "Register with TimeoutUSec=: how long the agent waits for each reply (15s, 500ms, 2min)")
      ->option_text("DURATION");
  app.add_option("--flush-to", options->flush_dirs,
                 "On Freeze and Thaw, before replying, write and fsync DIR/.hv-vss-writer-NAME (repeatable)")
      ->check(CLI::ExistingDirectory)
      ->option_text("DIR");
  app.set_version_flag("--version", std::string("hv-vss-writer-example ") + HV_VSS_VERSION);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;  // --help and --version exit 0, every usage error 2
  }
  if (options->object.empty()) {
    char* path = nullptr;
    if (int r = sd_bus_path_encode("/io/github/hvvss/WriterExample", options->name.c_str(), &path); r < 0)
      return fail(Status::from_errno(-r, "cannot make an object path"));
    options->object = path;
    std::free(path);
  }
  return std::nullopt;
}

}  // namespace
}  // namespace hvvss::writer

int main(int argc, char** argv) {
  try {
    hvvss::writer::Options options;
    if (auto code = hvvss::writer::parse(argc, argv, &options)) return *code;
    return hvvss::writer::serve(options);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "hv-vss-writer-example: fatal: %s\n", e.what());
    return 1;
  }
}
