#include "plugins/units/participant.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

namespace hvvss::units {

namespace {
Result job_result(const std::string& result) {
  if (result == "done") return Result::Ok;
  if (result == "skipped") return Result::Skipped;
  if (result == "timeout") return Result::Timeout;
  return Result::Failed;
}

// Every job but the first (the target's own) is a hook's part.
std::vector<PartOutcome> hook_parts(const std::vector<JobOutcome>& jobs, Clock::duration took) {
  std::vector<PartOutcome> parts;
  for (size_t i = 1; i < jobs.size(); ++i) {
    const JobOutcome& job = jobs[i];
    std::string detail = fmt::format("{} job {}", job.type, job.result);
    if (job_result(job.result) == Result::Failed || job_result(job.result) == Result::Timeout)
      detail += fmt::format(" (journalctl -u {})", job.unit);
    parts.push_back({job.unit, job_result(job.result), detail, took});
  }
  return parts;
}

std::string failures(const std::vector<PartOutcome>& parts) {
  std::vector<std::string> failed;
  for (const PartOutcome& p : parts)
    if (p.result == Result::Failed || p.result == Result::Timeout)
      failed.push_back(fmt::format("{}: {}", p.name, p.detail));
  return fmt::format("{}", fmt::join(failed, "; "));
}
}  // namespace

Units::Units(sd_event* loop, Systemd& systemd, std::string target, std::string env_file)
    : loop_(loop),
      systemd_(systemd),
      target_(std::move(target)),
      env_file_(std::move(env_file)),
      deadline_timer_(loop, [this] { out_of_time(); }) {
  systemd_.on_reachable([this] { reachable(); });
}

Units::~Units() { systemd_.on_reachable(nullptr); }

bool Units::begin(Action action, Deadline deadline, Done done) {
  round_.emplace(Round{++serial_, action, std::move(done), Clock::now()});
  if (action == Action::Thaw && !started_) {
    complete(Outcome::success("no hook was started"));
    return false;
  }
  if (!systemd_.reachable()) {
    // A started target stays active until a later thaw's stop job (or a successor agent's).
    complete(action == Action::Thaw ? Outcome::failure("systemd is not reachable: the hooks stay quiesced until it is")
                                    : Outcome{Result::Skipped, "systemd is not reachable", {}, false, {}});
    return false;
  }
  if (Status s = deadline_timer_.arm(deadline.early()); !s) {
    complete(Outcome::failure(s.message()));
    return false;
  }
  return true;
}

void Units::check(Txn, Deadline deadline, Done done) {
  if (!begin(Action::Check, deadline, std::move(done))) return;
  uint64_t serial = round_->serial;
  systemd_.unit(target_, [this, serial](const Status& s, const UnitInfo& info) { inspected(serial, s, info); });
}

// The target is known: every hook it requires or wants must load cleanly.
void Units::inspected(uint64_t serial, const Status& status, const UnitInfo& target) {
  if (!current(serial)) return;
  if (!status)
    return complete(Outcome::failure(fmt::format("cannot ask systemd about {}: {}", target_, status.message())));
  if (target.load_state != "loaded")
    return complete({Result::Skipped, fmt::format("no hook: {} is {}", target_, target.load_state), {}, false, {}});
  round_->required = target.requires_units;
  std::vector<std::string> hooks = target.requires_units;
  for (const std::string& u : target.wants_units)
    if (std::find(hooks.begin(), hooks.end(), u) == hooks.end()) hooks.push_back(u);
  if (hooks.empty()) return complete({Result::Skipped, "no hook installed", {}, false, {}});
  round_->inspecting = hooks.size();
  for (const std::string& hook : hooks) {
    systemd_.unit(hook, [this, serial, hook](const Status& s, const UnitInfo& info) {
      if (!current(serial)) return;
      Round& round = *round_;
      bool required = std::find(round.required.begin(), round.required.end(), hook) != round.required.end();
      PartOutcome part{hook, Result::Ok, "loads cleanly", Clock::now() - round.started};
      if (!s) {
        part.result = Result::Failed;
        part.detail = fmt::format("cannot ask systemd about it: {}", s.message());
      } else if (info.load_state != "loaded") {
        part.result = Result::Failed;
        part.detail =
            fmt::format("LoadState={}{}{}", info.load_state, info.load_error.empty() ? "" : ": ", info.load_error);
      }
      if (part.result != Result::Ok && required && !round.veto) round.veto = fmt::format("{}: {}", hook, part.detail);
      round.parts.push_back(std::move(part));
      if (--round.inspecting > 0) return;
      Outcome outcome = round.veto ? Outcome::failure(*round.veto) : Outcome::success(failures(round.parts));
      outcome.parts = std::move(round.parts);
      complete(std::move(outcome));
    });
  }
}

void Units::freeze(Txn txn, Deadline deadline, Done done) {
  if (!begin(Action::Freeze, deadline, std::move(done))) return;
  write_env(txn, Action::Freeze);
  started_ = true;  // whatever happens now, a stop job undoes it
  uint64_t serial = round_->serial;
  systemd_.enqueue(target_, "start",
                   [this, serial](const Status& s, const std::vector<JobOutcome>& jobs) { started(serial, s, jobs); });
}

void Units::started(uint64_t serial, const Status& status, const std::vector<JobOutcome>& jobs) {
  if (!current(serial)) return;
  if (!status && status.code() == Status::Code::NotFound) {
    started_ = false;
    return complete({Result::Skipped, fmt::format("no hook: {}", status.message()), {}, false, {}});
  }
  if (!status) {
    stop_in_background(status.message());
    return complete(Outcome::failure(fmt::format("cannot start {}: {}", target_, status.message())));
  }
  std::vector<PartOutcome> parts = hook_parts(jobs, Clock::now() - round_->started);
  if (jobs.front().result != "done") {
    // A RequiredBy= hook failed (the target's result is "dependency"): undo the others.
    std::string why = fmt::format("{} start job {}: {}", target_, jobs.front().result, failures(parts));
    stop_in_background(why);
    Outcome outcome = Outcome::failure(why);
    outcome.parts = std::move(parts);
    return complete(std::move(outcome));
  }
  Outcome outcome = Outcome::success(failures(parts));
  outcome.parts = std::move(parts);
  complete(std::move(outcome));
}

void Units::thaw(Txn txn, Deadline deadline, Done done) {
  if (!begin(Action::Thaw, deadline, std::move(done))) return;
  write_env(txn, Action::Thaw);
  uint64_t serial = round_->serial;
  systemd_.enqueue(target_, "stop",
                   [this, serial](const Status& s, const std::vector<JobOutcome>& jobs) { stopped(serial, s, jobs); });
}

void Units::stopped(uint64_t serial, const Status& status, const std::vector<JobOutcome>& jobs) {
  if (!current(serial)) return;
  if (!status) return complete(Outcome::failure(fmt::format("cannot stop {}: {}", target_, status.message())));
  started_ = false;
  std::vector<PartOutcome> parts = hook_parts(jobs, Clock::now() - round_->started);
  std::string failed = failures(parts);
  Outcome outcome = failed.empty() ? Outcome::success() : Outcome::failure(failed);
  outcome.parts = std::move(parts);
  complete(std::move(outcome));
}

// The deadline is near and systemd has not finished: hooks still starting are stopped.
void Units::out_of_time() {
  if (!round_) return;
  if (round_->action == Action::Freeze) stop_in_background("the freeze ran out of time");
  complete({Result::Timeout,
            fmt::format("{} did not finish in time{}", target_,
                        round_->action == Action::Freeze ? ": its hooks are being stopped" : ""),
            {},
            false,
            {}});
}

void Units::abort(Txn) {
  if (!round_ || round_->action != Action::Freeze) return;
  stop_in_background("the freeze was aborted");
  complete(Outcome::failure("aborted: the freeze did not finish in time"));
}

void Units::stop_in_background(const std::string& why) {
  spdlog::warn("units: stopping {} ({})", target_, why);
  systemd_.enqueue(target_, "stop", [this](const Status& s, const std::vector<JobOutcome>& jobs) {
    if (!s) return spdlog::error("units: cannot stop {}: {}", target_, s.message());
    std::string failed = failures(hook_parts(jobs, {}));
    if (!failed.empty()) return spdlog::error("units: stopping {}: {}", target_, failed);
    spdlog::info("units: {} stopped", target_);
    if (!round_ || round_->action != Action::Freeze) started_ = false;
  });
}

void Units::recover(Done done) {
  if (Status s = post(loop_, [done = std::move(done)] { done(Outcome::success()); }); !s)
    spdlog::critical("units: {}", s.message());
}

// systemd answers (at start-up, or after the bus came back): hooks that nobody is going to thaw,
// left quiesced by a dead agent or by a lost connection, are resumed.
void Units::reachable() {
  if (round_ || started_) return;
  systemd_.unit(target_, [this](const Status& s, const UnitInfo& info) {
    if (!s || round_ || started_) return;
    if (info.active_state != "active" && info.active_state != "activating") return;
    started_ = true;
    stop_in_background(
        fmt::format("{} is {} but no snapshot is under way: hooks left quiesced", target_, info.active_state));
  });
}

// Hooks read the transaction from here (EnvironmentFile=-…), to say which one their lines belong to.
void Units::write_env(Txn txn, Action action) {
  std::string tmp = env_file_ + ".new";
  std::string text = fmt::format("HV_VSS_TRANSACTION={}\nHV_VSS_ACTION={}\n", txn.id, action_name(action));
  FILE* f = std::fopen(tmp.c_str(), "we");
  bool ok = f && std::fwrite(text.data(), 1, text.size(), f) == text.size();
  if (f && std::fclose(f) != 0) ok = false;
  if (ok && std::rename(tmp.c_str(), env_file_.c_str()) == 0) return;
  spdlog::warn("units: cannot write {}: {} (hooks run without the transaction id)", env_file_, std::strerror(errno));
  unlink(tmp.c_str());
}

void Units::complete(Outcome outcome) {
  Round round = std::move(*round_);
  round_.reset();
  deadline_timer_.disarm();
  outcome.took = Clock::now() - round.started;
  if (Status s = post(loop_, [done = std::move(round.done), outcome = std::move(outcome)] { done(outcome); }); !s)
    spdlog::critical("units: {}", s.message());
}

}  // namespace hvvss::units
