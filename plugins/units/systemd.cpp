#include "plugins/units/systemd.h"

#include "agent/event_loop.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <set>

namespace hvvss::units {

namespace {
constexpr const char* kService = "org.freedesktop.systemd1";
constexpr const char* kManagerPath = "/org/freedesktop/systemd1";
constexpr const char* kManager = "org.freedesktop.systemd1.Manager";
constexpr const char* kUnitPrefix = "/org/freedesktop/systemd1/unit";

Status bus_error(const sd_bus_error* e) {
  std::string message = e->message && *e->message ? e->message : e->name;
  if (sd_bus_error_has_name(e, "org.freedesktop.systemd1.NoSuchUnit"))
    return Status::refusal(Status::Code::NotFound, message);
  return Status::error(message);
}

Status read_strings(sd_bus_message* m, std::vector<std::string>* out) {
  char** list = nullptr;
  if (int r = sd_bus_message_read_strv(m, &list); r < 0) return Status::from_errno(-r, "cannot read a unit list");
  for (char** s = list; s && *s; ++s) {
    out->emplace_back(*s);
    std::free(*s);
  }
  std::free(static_cast<void*>(list));
  return {};
}

// Reads the properties of org.freedesktop.systemd1.Unit that the hooks need from a GetAll reply.
Status read_unit_info(sd_bus_message* m, UnitInfo* info) {
  int r = sd_bus_message_enter_container(m, 'a', "{sv}");
  while (r > 0 && (r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
    const char* key = nullptr;
    if ((r = sd_bus_message_read(m, "s", &key)) < 0) break;
    std::string_view k = key;
    const char* a = nullptr;
    const char* b = nullptr;
    if (k == "LoadState" || k == "ActiveState") {
      r = sd_bus_message_read(m, "v", "s", &a);
      if (r >= 0) (k == "LoadState" ? info->load_state : info->active_state) = a;
    } else if (k == "LoadError") {
      r = sd_bus_message_read(m, "v", "(ss)", &a, &b);
      if (r >= 0) info->load_error = *b ? b : a;
    } else if (k == "Requires" || k == "Wants") {
      r = sd_bus_message_enter_container(m, 'v', "as");
      if (r >= 0) {
        if (Status s = read_strings(m, k == "Requires" ? &info->requires_units : &info->wants_units); !s) return s;
        r = sd_bus_message_exit_container(m);
      }
    } else {
      r = sd_bus_message_skip(m, "v");
    }
    if (r >= 0) r = sd_bus_message_exit_container(m);
  }
  if (r >= 0) r = sd_bus_message_exit_container(m);
  return r < 0 ? Status::from_errno(-r, "cannot read the unit's properties") : Status();
}
}  // namespace

struct Systemd::Request {
  Systemd* self = nullptr;
  sd_bus_slot* slot = nullptr;
  bool enqueue = false;  // counted in enqueuing_ until its reply
  Reply reply;
  ~Request() { sd_bus_slot_unref(slot); }
};

struct Systemd::JobWait {
  std::vector<JobOutcome> jobs;  // the enqueued job first
  std::set<uint32_t> open;       // ids not removed yet
  JobsDone done;
};

Systemd::Systemd(sd_event* loop) : loop_(loop) {}

Systemd::~Systemd() {
  requests_.clear();
  sd_bus_slot_unref(match_slot_);
}

void Systemd::connected(sd_bus* bus) {
  fail_all(Status::error("the D-Bus connection is gone"));
  match_slot_ = sd_bus_slot_unref(match_slot_);
  reachable_ = false;
  bus_ = bus;
  if (!bus) return;
  // The match first: messages on one connection keep their order, so no JobRemoved of a job
  // enqueued later can arrive before it is in place.
  int r = sd_bus_match_signal_async(bus, &match_slot_, kService, kManagerPath, kManager, "JobRemoved",
                                    &Systemd::on_job_removed, nullptr, this);
  sd_bus_message* m = nullptr;
  if (r >= 0) r = sd_bus_message_new_method_call(bus, &m, kService, kManagerPath, kManager, "Subscribe");
  if (r >= 0) r = call(m, [this](const Status& s, sd_bus_message*) { subscribed(s); });
  sd_bus_message_unref(m);
  if (r < 0) spdlog::warn("units: cannot follow systemd's jobs: {}; hooks are not run", std::strerror(-r));
}

void Systemd::subscribed(const Status& status) {
  if (!status) {
    spdlog::warn("units: systemd is not reachable on the system bus ({}); hooks are not run until it is",
                 status.message());
    return;
  }
  reachable_ = true;
  spdlog::debug("units: following systemd's jobs");
  if (reachable_cb_) reachable_cb_();
}

void Systemd::unit(const std::string& name, InfoDone done) {
  char* path = nullptr;
  sd_bus_message* m = nullptr;
  int r = bus_ ? sd_bus_path_encode(kUnitPrefix, name.c_str(), &path) : -ENOTCONN;
  if (r >= 0) r = sd_bus_message_new_method_call(bus_, &m, kService, path, "org.freedesktop.DBus.Properties", "GetAll");
  if (r >= 0) r = sd_bus_message_append(m, "s", "org.freedesktop.systemd1.Unit");
  std::free(path);
  auto cb = std::make_shared<InfoDone>(std::move(done));
  if (r >= 0)
    r = call(m, [cb](const Status& status, sd_bus_message* reply) {
      UnitInfo info;
      if (!status) return (*cb)(status, info);
      Status s = read_unit_info(reply, &info);
      (*cb)(s, std::move(info));
    });
  sd_bus_message_unref(m);
  if (r < 0) {
    Status why = Status::from_errno(-r, fmt::format("cannot ask systemd about {}", name));
    if (Status s = post(loop_, [cb, why] { (*cb)(why, {}); }); !s) spdlog::critical("units: {}", s.message());
  }
}

void Systemd::enqueue(const std::string& unit, const std::string& type, JobsDone done) {
  sd_bus_message* m = nullptr;
  int r =
      bus_ ? sd_bus_message_new_method_call(bus_, &m, kService, kManagerPath, kManager, "EnqueueUnitJob") : -ENOTCONN;
  if (r >= 0) r = sd_bus_message_append(m, "sss", unit.c_str(), type.c_str(), "replace");
  auto cb = std::make_shared<JobsDone>(std::move(done));
  if (r >= 0)
    r = call(
        m,
        [this, unit, cb](const Status& status, sd_bus_message* reply) {
          enqueued(unit, status, reply, std::move(*cb));
        },
        true);
  sd_bus_message_unref(m);
  if (r < 0) {
    Status why = Status::from_errno(-r, fmt::format("cannot enqueue a {} job for {}", type, unit));
    if (Status s = post(loop_, [cb, why] { (*cb)(why, {}); }); !s) spdlog::critical("units: {}", s.message());
  }
}

void Systemd::enqueued(const std::string& unit, const Status& status, sd_bus_message* reply, JobsDone done) {
  if (!status) return done(status, {});
  auto wait = std::make_unique<JobWait>();
  wait->done = std::move(done);
  uint32_t id = 0;
  const char* job_path = nullptr;
  const char* unit_id = nullptr;
  const char* unit_path = nullptr;
  const char* type = nullptr;
  int r = sd_bus_message_read(reply, "uosos", &id, &job_path, &unit_id, &unit_path, &type);
  if (r >= 0) wait->jobs.push_back({id, unit_id, type, {}});
  if (r >= 0) r = sd_bus_message_enter_container(reply, 'a', "(uosos)");
  while (r > 0 && (r = sd_bus_message_read(reply, "(uosos)", &id, &job_path, &unit_id, &unit_path, &type)) > 0)
    if (id != wait->jobs.front().id) wait->jobs.push_back({id, unit_id, type, {}});
  if (r >= 0) r = sd_bus_message_exit_container(reply);
  if (r < 0) return wait->done(Status::from_errno(-r, fmt::format("cannot read the jobs enqueued for {}", unit)), {});
  for (JobOutcome& job : wait->jobs) {
    auto early = removed_early_.find(job.id);
    if (early != removed_early_.end())
      job.result = early->second.result;
    else
      wait->open.insert(job.id);
  }
  waits_.push_back(std::move(wait));
  finish_waits();
}

int Systemd::on_job_removed(sd_bus_message* m, void* userdata, sd_bus_error*) {
  auto* self = static_cast<Systemd*>(userdata);
  JobOutcome job;
  const char* path = nullptr;
  const char* unit = nullptr;
  const char* result = nullptr;
  if (int r = sd_bus_message_read(m, "uoss", &job.id, &path, &unit, &result); r < 0) {
    spdlog::warn("units: an unreadable JobRemoved signal: {}", std::strerror(-r));
    return 0;
  }
  job.unit = unit;
  job.result = result;
  bool known = false;
  for (auto& wait : self->waits_) {
    if (!wait->open.erase(job.id)) continue;
    known = true;
    for (JobOutcome& j : wait->jobs)
      if (j.id == job.id) j.result = job.result;
  }
  // An EnqueueUnitJob reply still on its way may name this job.
  if (!known && self->enqueuing_ > 0) self->removed_early_[job.id] = job;
  self->finish_waits();
  return 0;
}

void Systemd::finish_waits() {
  std::vector<std::unique_ptr<JobWait>> finished;
  for (auto it = waits_.begin(); it != waits_.end();) {
    if ((*it)->open.empty()) {
      finished.push_back(std::move(*it));
      it = waits_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto& wait : finished) wait->done({}, std::move(wait->jobs));
}

void Systemd::fail_all(const Status& why) {
  std::vector<std::function<void()>> failures;
  for (auto& request : requests_) failures.push_back([reply = std::move(request->reply), why] { reply(why, nullptr); });
  for (auto& wait : waits_) failures.push_back([done = std::move(wait->done), why] { done(why, {}); });
  requests_.clear();
  waits_.clear();
  removed_early_.clear();
  enqueuing_ = 0;
  for (auto& failure : failures)
    if (Status s = post(loop_, std::move(failure)); !s) spdlog::critical("units: {}", s.message());
}

int Systemd::call(sd_bus_message* m, Reply reply, bool enqueue) {
  auto request = std::make_unique<Request>();
  request->self = this;
  request->enqueue = enqueue;
  request->reply = std::move(reply);
  int r = sd_bus_call_async(bus_, &request->slot, m, &Systemd::on_reply, request.get(), 0);
  if (r < 0) return r;
  requests_.push_back(std::move(request));
  if (enqueue) enqueuing_++;
  return r;
}

int Systemd::on_reply(sd_bus_message* m, void* userdata, sd_bus_error*) {
  auto* raw = static_cast<Request*>(userdata);
  Systemd* self = raw->self;
  auto it =
      std::find_if(self->requests_.begin(), self->requests_.end(), [raw](const auto& r) { return r.get() == raw; });
  if (it == self->requests_.end()) return 0;
  std::unique_ptr<Request> request = std::move(*it);
  self->requests_.erase(it);
  if (request->enqueue) self->enqueuing_--;
  const sd_bus_error* e = sd_bus_message_get_error(m);
  request->reply(e ? bus_error(e) : Status(), m);
  if (self->enqueuing_ == 0) self->removed_early_.clear();
  return 0;
}

}  // namespace hvvss::units
