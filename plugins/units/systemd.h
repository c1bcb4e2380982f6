// systemd's manager (org.freedesktop.systemd1) as the unit hooks need it, on the agent's bus
// connection and loop: what a unit is (loaded or not, and why; what it requires and wants), and a
// job enqueued together with every job it pulls in, followed until systemd has removed each of
// them (JobRemoved carries its result). Nothing blocks: every request completes later, on the loop,
// through its callback, and every request still open when the connection goes completes with an
// error.
#pragma once

#include "agent/bus_user.h"
#include "agent/status.h"

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace hvvss::units {

struct UnitInfo {
  std::string load_state;    // loaded, not-found, bad-setting, error, masked
  std::string load_error;    // systemd's sentence when it could not load the unit
  std::string active_state;  // active, activating, deactivating, inactive, failed
  std::vector<std::string> requires_units;
  std::vector<std::string> wants_units;
};

// A job's end as JobRemoved tells it.
struct JobOutcome {
  uint32_t id = 0;
  std::string unit;
  std::string type;    // start, stop, ...
  std::string result;  // done, canceled, timeout, failed, dependency, skipped
};

class Systemd final : public BusUser {
 public:
  using InfoDone = std::function<void(Status, UnitInfo)>;
  // The enqueued job first, then every job it affected.
  using JobsDone = std::function<void(Status, std::vector<JobOutcome>)>;

  explicit Systemd(sd_event* loop);
  ~Systemd() override;
  Systemd(const Systemd&) = delete;
  Systemd& operator=(const Systemd&) = delete;

  void connected(sd_bus* bus) override;
  // Told once systemd answers on a new connection (its job signals are followed from then on).
  void on_reachable(std::function<void()> reachable) { reachable_cb_ = std::move(reachable); }
  // Connected, and systemd answered: requests can be made.
  bool reachable() const { return reachable_; }

  void unit(const std::string& name, InfoDone done);
  // Manager.EnqueueUnitJob(unit, type, "replace"), then waits for every job it returned.
  void enqueue(const std::string& unit, const std::string& type, JobsDone done);

 private:
  struct Request;  // a call waiting for its reply
  struct JobWait;  // an enqueued job set waiting for its JobRemoved signals
  // A call's end: an error (the reply's, or the connection's loss, with no message) or the reply.
  using Reply = std::function<void(const Status& status, sd_bus_message* reply)>;

  void subscribed(const Status& status);
  static int on_job_removed(sd_bus_message* m, void* userdata, sd_bus_error* error);
  void enqueued(const std::string& unit, const Status& status, sd_bus_message* reply, JobsDone done);
  void finish_waits();
  void fail_all(const Status& why);
  int call(sd_bus_message* m, Reply reply, bool enqueue = false);
  static int on_reply(sd_bus_message* m, void* userdata, sd_bus_error* error);

  sd_event* loop_;
  sd_bus* bus_ = nullptr;
  bool reachable_ = false;
  std::function<void()> reachable_cb_;
  sd_bus_slot* match_slot_ = nullptr;
  std::vector<std::unique_ptr<Request>> requests_;
  std::vector<std::unique_ptr<JobWait>> waits_;
  int enqueuing_ = 0;  // EnqueueUnitJob calls waiting for their reply
  // Jobs removed while an EnqueueUnitJob reply was still on its way, by id.
  std::map<uint32_t, JobOutcome> removed_early_;
};

}  // namespace hvvss::units
