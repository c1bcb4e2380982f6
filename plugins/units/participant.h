// The systemd unit hooks as one participant of the engine, in the application layer. An
// application hooks in by installing a unit that is PartOf= and Before= the quiesce target and
// RequiredBy= or WantedBy= it (hv-vss-hooks(5)). Freeze starts the target and Thaw stops it, each
// as one systemd job together with every hook job it pulls in, waited for to the last one, so that
// systemd runs the hooks in their Before=/After= order and undoes them in reverse. A failed
// RequiredBy= hook fails the target's job and vetoes the snapshot; a failed WantedBy= hook is
// reported. Check verifies that every hook loads cleanly. Each hook is a part of the outcome.
#pragma once

#include "agent/event_loop.h"
#include "agent/participant.h"
#include "plugins/units/systemd.h"

#include <optional>
#include <string>

namespace hvvss::units {

class Units final : public Participant {
 public:
  // `env_file`: where each hook finds the transaction (EnvironmentFile=-… in its unit).
  Units(sd_event* loop, Systemd& systemd, std::string target, std::string env_file);
  ~Units() override;
  Units(const Units&) = delete;
  Units& operator=(const Units&) = delete;

  std::string_view name() const override { return "units"; }
  Policy policy() const override { return Policy::Required; }  // RequiredBy= or WantedBy= decides
  Layer layer() const override { return Layer::Application; }
  void check(Txn txn, Deadline deadline, Done done) override;
  void freeze(Txn txn, Deadline deadline, Done done) override;
  void thaw(Txn txn, Deadline deadline, Done done) override;
  void abort(Txn txn) override;
  // Hooks left quiesced by a dead agent are resumed once systemd is reachable (see reachable()).
  void recover(Done done) override;

 private:
  struct Round {
    uint64_t serial;
    Action action;
    Done done;
    Clock::time_point started;
    // A check's: the target's Requires= (RequiredBy= hooks), the hooks' parts so far, how many
    // are still being asked about, and the first required one that does not load.
    std::vector<std::string> required = {};
    std::vector<PartOutcome> parts = {};
    size_t inspecting = 0;
    std::optional<std::string> veto = {};
  };

  // Starts a round; false when it is already over (nothing to thaw, or systemd not reachable).
  bool begin(Action action, Deadline deadline, Done done);
  void inspected(uint64_t serial, const Status& status, const UnitInfo& target);
  void started(uint64_t serial, const Status& status, const std::vector<JobOutcome>& jobs);
  void stopped(uint64_t serial, const Status& status, const std::vector<JobOutcome>& jobs);
  void out_of_time();
  // Stops the target in the background (a freeze given up): hooks still starting are killed.
  void stop_in_background(const std::string& why);
  void reachable();
  void write_env(Txn txn, Action action);
  bool current(uint64_t serial) const { return round_ && round_->serial == serial; }
  void complete(Outcome outcome);

  sd_event* loop_;
  Systemd& systemd_;
  std::string target_;
  std::string env_file_;
  Timer deadline_timer_;
  std::optional<Round> round_;
  uint64_t serial_ = 0;
  bool started_ = false;  // a start job was enqueued and no stop job has finished since
};

}  // namespace hvvss::units
