#include "agent/transaction.h"

#include <algorithm>
#include <memory>
#include <utility>

namespace hvvss {

std::string_view state_name(State state) {
  switch (state) {
    case State::Idle: return "idle";
    case State::Checking: return "checking";
    case State::Freezing: return "freezing";
    case State::Frozen: return "frozen";
    case State::Thawing: return "thawing";
  }
  return "unknown";
}

namespace {
uint64_t to_usec(Clock::time_point t) {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count());
}
double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }
// Joins plugin details into one sentence: "fsfreeze: froze 3 filesystems; units: ...".
void add_detail(std::string& detail, const Plugin& plugin, const Outcome& outcome) {
  if (outcome.detail.empty()) return;
  detail += fmt::format("{}{}: {}", detail.empty() ? "" : "; ", plugin.name(), outcome.detail);
}
bool is_transaction_op(uint8_t op) {
  return op == static_cast<uint8_t>(Op::HotBackup) || op == static_cast<uint8_t>(Op::Freeze) ||
         op == static_cast<uint8_t>(Op::Thaw);
}
}  // namespace

TransactionEngine::TransactionEngine(sd_event* loop, std::vector<Plugin*> plugins, EngineSettings settings)
    : loop_(loop), plugins_(std::move(plugins)), settings_(settings), worker_(loop) {}

TransactionEngine::~TransactionEngine() {
  sd_event_source_disable_unref(deadline_timer_);
  sd_event_source_disable_unref(auto_thaw_timer_);
}

TxnTag TransactionEngine::tag() const { return {txn_, op_name(op_), state_name(state_)}; }

// The reply goes out a safety margin before the budget ends; plugins must finish a margin
// before that, so that a plugin that honours its deadline is never overtaken by the timer.
Clock::duration TransactionEngine::margin() const {
  return std::min<Clock::duration>(std::chrono::milliseconds(500), settings_.reply_budget / 10);
}
Clock::time_point TransactionEngine::reply_by(Clock::time_point received) const {
  return received + settings_.reply_budget - margin();
}
Deadline TransactionEngine::phase_deadline(Clock::time_point received) const {
  return Deadline(reply_by(received) - margin());
}

void TransactionEngine::arm(sd_event_source*& timer, Clock::time_point at, sd_event_time_handler_t handler) {
  if (!timer) {
    sd_event_add_time(loop_, &timer, CLOCK_MONOTONIC, to_usec(at), 1000, handler, this);
    return;
  }
  sd_event_source_set_time(timer, to_usec(at));
  sd_event_source_set_enabled(timer, SD_EVENT_ONESHOT);
}

void TransactionEngine::handle(uint8_t op, ReplyFn reply) {
  if (awaiting_ || stopping_) {
    // The kernel never overlaps requests, and a stopping agent starts nothing new.
    spdlog::warn("{} {} refused: {}", tag(), op_name(op),
                 stopping_ ? "agent is stopping" : "a request is already pending");
    reply(op, HvStatus::Fail);
    return;
  }
  if (!is_transaction_op(op)) {
    spdlog::warn("{} unsupported operation {} ({}): answered HV_E_FAIL", tag(), op, op_name(op));
    reply(op, HvStatus::Fail);
    return;
  }
  bool new_txn = !txn_open_ || (op == static_cast<uint8_t>(Op::HotBackup) && !frozen());
  if (new_txn) {
    ++txn_;
    txn_open_ = true;
  }
  op_ = op;
  awaiting_ = Pending{next_seq_++, op, std::move(reply), Clock::now()};
  spdlog::info("{} request received", tag());
  arm(deadline_timer_, reply_by(awaiting_->received), &TransactionEngine::on_deadline);
  if (!worker_.busy()) start_awaiting();
}

void TransactionEngine::start_awaiting() {
  const Pending& request = *awaiting_;
  auto op = static_cast<Op>(request.op);
  if (op == Op::Freeze && frozen()) {
    arm(auto_thaw_timer_, Clock::now() + settings_.auto_thaw, &TransactionEngine::on_auto_thaw);
    answer(HvStatus::Ok, "already frozen");
    return;
  }
  if (op == Op::Thaw && !frozen()) {
    answer(HvStatus::Ok, "nothing was frozen");
    txn_open_ = false;
    return;
  }
  run_phase(request.op, request.seq, phase_deadline(request.received));
}

void TransactionEngine::run_phase(uint8_t op, uint64_t seq, Deadline deadline) {
  running_seq_ = seq;
  auto result = std::make_shared<PhaseResult>();
  std::function<void()> job;
  switch (static_cast<Op>(op)) {
    case Op::HotBackup:
      state_ = State::Checking;
      job = [this, result, deadline] { *result = run_check(deadline); };
      break;
    case Op::Freeze:
      state_ = State::Freezing;
      job = [this, result, deadline] { *result = run_freeze(deadline); };
      break;
    default:
      state_ = State::Thawing;
      job = [this, result, deadline] { *result = run_thaw(deadline); };
      break;
  }
  worker_.run(std::move(job), [this, op, seq, result] { after_phase(op, seq, *result); });
}

void TransactionEngine::after_phase(uint8_t op, uint64_t seq, const PhaseResult& result) {
  bool answered_late = !(awaiting_ && awaiting_->seq == seq);
  running_seq_ = 0;
  switch (static_cast<Op>(op)) {
    case Op::HotBackup:
      state_ = frozen() ? State::Frozen : State::Idle;
      if (!answered_late) answer(result.ok ? HvStatus::Ok : HvStatus::Fail, result.detail);
      if (!result.ok) txn_open_ = false;
      break;
    case Op::Freeze:
      frozen_count_ = result.frozen_count;
      state_ = frozen() ? State::Frozen : State::Idle;
      if (answered_late) {
        if (frozen()) start_thaw("the freeze finished after its reply deadline: rolling back");
      } else {
        if (frozen()) arm(auto_thaw_timer_, Clock::now() + settings_.auto_thaw, &TransactionEngine::on_auto_thaw);
        answer(result.ok ? HvStatus::Ok : HvStatus::Fail, result.detail);
      }
      if (!frozen()) txn_open_ = false;
      break;
    default:
      // A thaw always ends with nothing frozen by us: plugins thaw everything they froze or
      // report what they could not, and retrying would not help.
      frozen_count_ = 0;
      thaw_due_.clear();
      state_ = State::Idle;
      if (auto_thaw_timer_) sd_event_source_set_enabled(auto_thaw_timer_, SD_EVENT_OFF);
      if (seq == 0) {
        if (result.ok)
          spdlog::info("{} thawed{}{}", tag(), result.detail.empty() ? "" : ": ", result.detail);
        else
          spdlog::error("{} thaw incomplete: {}", tag(), result.detail);
      } else if (!answered_late) {
        answer(result.ok ? HvStatus::Ok : HvStatus::Fail, result.detail);
      }
      txn_open_ = false;
      break;
  }
  if (worker_.busy()) return;
  if (!thaw_due_.empty() && frozen())
    start_thaw(std::exchange(thaw_due_, {}));
  else if (awaiting_)
    start_awaiting();
  maybe_finish_stop();
}

void TransactionEngine::start_thaw(std::string_view why) {
  spdlog::warn("{} {}", tag(), why);
  run_phase(static_cast<uint8_t>(Op::Thaw), 0, Deadline::after(settings_.reply_budget));
}

void TransactionEngine::answer(HvStatus status, std::string_view detail) {
  Pending request = std::move(*awaiting_);
  awaiting_.reset();
  sd_event_source_set_enabled(deadline_timer_, SD_EVENT_OFF);
  request.reply(request.op, status);
  auto level = status == HvStatus::Ok ? spdlog::level::info : spdlog::level::err;
  spdlog::log(level, "{} replied {} after {:.1f} ms{}{}", tag(), status_name(status), ms_since(request.received),
              detail.empty() ? "" : ": ", detail);
}

int TransactionEngine::on_deadline(sd_event_source*, uint64_t, void* userdata) {
  auto* self = static_cast<TransactionEngine*>(userdata);
  if (!self->awaiting_) return 0;
  bool running = self->running_seq_ == self->awaiting_->seq;
  self->answer(HvStatus::Fail, running ? "the phase did not finish within the reply budget; it will be rolled back"
                                       : "the previous phase is still running; request not started");
  return 0;
}

int TransactionEngine::on_auto_thaw(sd_event_source*, uint64_t, void* userdata) {
  auto* self = static_cast<TransactionEngine*>(userdata);
  self->request_thaw(fmt::format("no THAW within {} s of the freeze: thawing automatically",
                                 std::chrono::duration<double>(self->settings_.auto_thaw).count()));
  return 0;
}

// Thaws now, or, while the worker is busy with another phase, as soon as it returns. (A freeze
// that is still running is rolled back by after_phase once its request has been answered.)
void TransactionEngine::request_thaw(std::string why) {
  if (!frozen()) return;
  if (worker_.busy())
    thaw_due_ = std::move(why);
  else
    start_thaw(why);
}

void TransactionEngine::abandon(std::string_view why) {
  if (awaiting_) {
    awaiting_.reset();
    sd_event_source_set_enabled(deadline_timer_, SD_EVENT_OFF);
  }
  request_thaw(fmt::format("{}: thawing what we froze", why));
}

void TransactionEngine::stop(std::function<void()> done) {
  stopping_ = true;
  on_stopped_ = std::move(done);
  if (awaiting_) answer(HvStatus::Fail, "agent is stopping");
  request_thaw("agent is stopping: thawing what we froze");
  maybe_finish_stop();
}

void TransactionEngine::maybe_finish_stop() {
  if (!stopping_ || worker_.busy() || frozen() || !on_stopped_) return;
  auto done = std::move(on_stopped_);
  on_stopped_ = nullptr;
  done();
}

TransactionEngine::PhaseResult TransactionEngine::run_check(Deadline deadline) {
  PhaseResult result;
  for (Plugin* plugin : plugins_) {
    Outcome outcome = plugin->check(deadline);
    if (!outcome.ok) result.ok = false;
    add_detail(result.detail, *plugin, outcome);
  }
  return result;
}

TransactionEngine::PhaseResult TransactionEngine::run_freeze(Deadline deadline) {
  PhaseResult result;
  for (size_t i = 0; i < plugins_.size(); ++i) {
    Outcome outcome = plugins_[i]->freeze(deadline);
    if (!outcome.ok) {
      result.ok = false;
      result.detail.clear();
      add_detail(result.detail, *plugins_[i], outcome);
      for (size_t j = i; j-- > 0;) plugins_[j]->thaw(Deadline::after(settings_.reply_budget));
      result.frozen_count = 0;
      return result;
    }
    result.frozen_count = i + 1;
    add_detail(result.detail, *plugins_[i], outcome);
  }
  return result;
}

TransactionEngine::PhaseResult TransactionEngine::run_thaw(Deadline deadline) {
  PhaseResult result;
  for (size_t j = plugins_.size(); j-- > 0;) {
    Outcome outcome = plugins_[j]->thaw(deadline);
    if (!outcome.ok) result.ok = false;
    add_detail(result.detail, *plugins_[j], outcome);
  }
  return result;
}

}  // namespace hvvss
