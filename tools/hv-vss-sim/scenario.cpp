#include "tools/hv-vss-sim/scenario.h"
#include "tools/hv-vss-sim/cuse_transport.h"
#include "tools/hv-vss-sim/socket_transport.h"

#include <fmt/format.h>
#include <sstream>

namespace hvvss::sim {

namespace {

using std::chrono::duration;
using std::chrono::duration_cast;

Clock::duration seconds(double s) { return duration_cast<Clock::duration>(duration<double>(s)); }

std::vector<std::byte> request_frame(uint8_t op) {
  Frame frame = encode_request(op);
  return {frame.begin(), frame.end()};
}

// Plays steps against the device and counts what went wrong: bad or missing replies here, and
// writes the device rejected.
class Runner {
 public:
  Runner(const Options& options, KernelDevice& device, Timeline& timeline)
      : options_(options), device_(device), timeline_(timeline) {}

  // Sends the operation named `name` (HOT_BACKUP, FREEZE, THAW, ...) and expects `expected` (or
  // what --expect says, HV_S_OK by default); false for an unknown name.
  bool request(std::string_view name, const std::string& expected = {}) {
    for (int op = 0; op <= 255; ++op)
      if (op_name(static_cast<uint8_t>(op)) == name) {
        send(request_frame(static_cast<uint8_t>(op)), std::string(name), expected);
        return true;
      }
    fail("unknown_op", fmt::format("no operation is called '{}'", name));
    return false;
  }

  void request(Op op) { send(request_frame(static_cast<uint8_t>(op)), std::string(op_name(static_cast<uint8_t>(op)))); }
  void raw(const std::vector<std::byte>& frame, const std::string& label) { send(frame, label, "HV_E_FAIL"); }
  // Queues a request whose reply the scenario does not wait for.
  bool queue(Op op) {
    if (device_.queue(request_frame(static_cast<uint8_t>(op)), op_name(static_cast<uint8_t>(op)))) return true;
    fail("no_daemon", "no daemon registered to queue the request to");
    return false;
  }

  void backup() {
    request(Op::HotBackup);
    request(Op::Freeze);
    hold();
    request(Op::Thaw);
  }

  void hold() {
    timeline_.event(
        "hold", {{"seconds", options_.hold_stdin ? Timeline::str("until stdin") : Timeline::num(options_.hold_sec)}});
    if (options_.hold_stdin)
      device_.hold_until_stdin();
    else
      device_.hold(seconds(options_.hold_sec));
  }

  // Waits for a registered daemon; `anew` waits for one that registers after this point
  // (the daemon had to reopen the device).
  bool wait_for_daemon(bool anew = false) {
    uint64_t count = anew ? device_.registrations() + 1 : 1;
    if (device_.wait_for_daemon(seconds(options_.wait_daemon_sec), count)) return true;
    fail("no_daemon", fmt::format("no daemon registered within {} s", options_.wait_daemon_sec));
    return false;
  }

  // Keeps the device served for the linger period, judging what the daemon writes after the last
  // reply (a second one?), then reports the verdict; every rejected write the scenario did not
  // expect counts as a failure. A duplicate reply may also have been taken as the next request's
  // reply, as the kernel would; the duplicate of the last one is then left over, and caught here.
  int finish() {
    device_.hold(seconds(options_.linger_sec));
    int failures = failures_ + device_.unexpected_rejections();
    timeline_.event("done", {{"ok", Timeline::boolean(failures == 0)}, {"failures", std::to_string(failures)}});
    return failures == 0 ? 0 : 1;
  }

 private:
  void fail(std::string_view event, const std::string& problem) {
    ++failures_;
    timeline_.event(event, {{"ok", "false"}, {"problem", Timeline::str(problem)}});
  }

  void send(const std::vector<std::byte>& frame, const std::string& label, std::string expected = {}) {
    if (expected.empty()) {
      auto it = options_.expect.find(label);
      expected = it != options_.expect.end() ? it->second : "HV_S_OK";
    }
    bool freeze = label == "FREEZE";
    Exchange x = device_.transact(frame, label, seconds(freeze ? options_.freeze_timeout_sec : options_.timeout_sec));
    std::string status = std::string(status_name(static_cast<HvStatus>(x.status)));
    std::string problem;
    switch (x.kind) {
      case Exchange::Kind::NoDaemon: problem = "no daemon registered: the kernel answered HV_E_FAIL itself"; break;
      case Exchange::Kind::Timeout: problem = "no reply before the kernel's timeout: the host got HV_E_FAIL"; break;
      case Exchange::Kind::Disconnected: problem = "the daemon let go of the device before replying"; break;
      case Exchange::Kind::Replied:
        if (status != expected)
          problem = fmt::format("expected {}", expected);
        else if (x.latency_ms > options_.reply_budget_sec * 1000)
          problem = "late: over the reply budget";
        break;
    }
    std::vector<Timeline::Field> fields = {{"op", Timeline::str(label)},
                                           {"status", Timeline::str(status)},
                                           {"code", Timeline::str(status_hex(x.status))},
                                           {"flags", std::to_string(x.flags)},
                                           {"latency_ms", Timeline::num(x.latency_ms)},
                                           {"expected", Timeline::str(expected)},
                                           {"ok", Timeline::boolean(problem.empty())}};
    if (!problem.empty()) {
      fields.emplace_back("problem", Timeline::str(problem));
      ++failures_;
    }
    timeline_.event("reply", fields);
  }

  const Options& options_;
  KernelDevice& device_;
  Timeline& timeline_;
  int failures_ = 0;
};

}  // namespace

const std::vector<std::pair<std::string, std::string>>& scenario_help() {
  static const std::vector<std::pair<std::string, std::string>> help = {
      {"backup", "HOT_BACKUP, FREEZE, hold, THAW: one host backup"},
      {"repeat", "the backup scenario COUNT times (with --reconnect-every K, the driver goes away after every K)"},
      {"freeze-no-thaw", "HOT_BACKUP, FREEZE, hold, then never THAW (the daemon must auto-thaw)"},
      {"idle", "no request at all: keeps a registered daemon connected for the hold"},
      {"stdin",
       "one request per line on stdin, by name (HOT_BACKUP, FREEZE, THAW, ...) and optionally the status "
       "expected (FREEZE HV_E_FAIL), until EOF"},
      {"thaw-idle", "a THAW with nothing frozen (must be answered HV_S_OK)"},
      {"unknown-op", "operations the daemon does not handle (7, 42, 255: HV_E_FAIL), then a backup"},
      {"bad-frame", "frames of 5 and 20 bytes (HV_E_FAIL; the daemon re-registers after each), then a backup"},
      {"disconnect-while-frozen",
       "FREEZE, then the driver goes away; the daemon must thaw and re-register; "
       "hold, then HOT_BACKUP and THAW"},
      {"disconnect-mid-freeze",
       "FREEZE, and while it is outstanding (hold) the driver goes away; the daemon must re-register, "
       "never answer that FREEZE on the new channel, and (after a hold) complete a backup"},
      {"fake-hibernate-thaw",
       "FREEZE, then hibernation's fake THAW (reply rejected); the daemon must thaw, "
       "re-register, and complete a backup"},
  };
  return help;
}

int run_scenario(const Options& options, Timeline& timeline) {
  std::unique_ptr<Transport> transport;
  if (options.cuse.empty())
    transport = std::make_unique<SocketTransport>(options.socket, timeline);
  else
    transport = std::make_unique<CuseTransport>(options.cuse, timeline);
  KernelDevice device(std::move(transport), timeline);
  if (auto e = device.start(); !e.empty()) {
    timeline.event("error", {{"problem", Timeline::str(e)}});
    return 2;
  }
  Runner run(options, device, timeline);
  const std::string& name = options.scenario;
  timeline.event("scenario", {{"name", Timeline::str(name)}});
  if (!run.wait_for_daemon()) return run.finish();
  if (options.start_stdin) {
    timeline.event("waiting", {{"for", Timeline::str("a line on stdin")}});
    device.hold_until_stdin();
  }
  if (name == "backup") {
    run.backup();
  } else if (name == "repeat") {
    for (int i = 0; i < options.count; ++i) {
      run.backup();
      if (options.reconnect_every > 0 && (i + 1) % options.reconnect_every == 0 && i + 1 < options.count) {
        device.drop_daemon("the channel is reset between backups (--reconnect-every)");
        if (!run.wait_for_daemon(true)) break;
      }
    }
  } else if (name == "freeze-no-thaw") {
    run.request(Op::HotBackup);
    run.request(Op::Freeze);
    run.hold();
  } else if (name == "idle") {
    run.hold();
  } else if (name == "stdin") {
    while (auto line = device.next_stdin_line()) {
      std::istringstream words(*line);
      std::string op, expected;
      words >> op >> expected;
      run.request(op, expected);
    }
  } else if (name == "thaw-idle") {
    run.request(Op::Thaw);
  } else if (name == "unknown-op") {
    for (uint8_t op : {uint8_t{7}, uint8_t{42}, uint8_t{255}}) run.raw(request_frame(op), fmt::format("OP_{}", op));
    run.backup();
  } else if (name == "bad-frame") {
    // The daemon answers HV_E_FAIL, then reopens the device: wait for it after each frame.
    run.raw(std::vector<std::byte>(5, std::byte{5}), "FRAME_5_BYTES");
    if (run.wait_for_daemon(true)) run.raw(std::vector<std::byte>(20, std::byte{5}), "FRAME_20_BYTES");
    if (run.wait_for_daemon(true)) run.backup();
  } else if (name == "disconnect-while-frozen") {
    run.request(Op::HotBackup);
    run.request(Op::Freeze);
    device.drop_daemon("simulated channel rescind while frozen");
    if (run.wait_for_daemon(true)) {
      run.hold();
      run.request(Op::HotBackup);
      run.request(Op::Thaw);
    }
  } else if (name == "disconnect-mid-freeze") {
    run.request(Op::HotBackup);
    if (run.queue(Op::Freeze)) {
      run.hold();
      device.drop_daemon("simulated channel rescind while the FREEZE is outstanding");
      if (run.wait_for_daemon(true)) {
        run.hold();
        run.backup();
      }
    }
  } else if (name == "fake-hibernate-thaw") {
    run.request(Op::HotBackup);
    run.request(Op::Freeze);
    device.queue_fake_thaw();
    if (run.wait_for_daemon(true)) run.backup();
  } else {
    timeline.event("error", {{"problem", Timeline::str("unknown scenario " + name)}});
    return 2;
  }
  return run.finish();
}

}  // namespace hvvss::sim
