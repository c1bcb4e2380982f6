#include "agent/transaction.h"

#include <fmt/ranges.h>

#include <algorithm>
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

std::string_view action_name(Action action) {
  switch (action) {
    case Action::Check: return "check";
    case Action::Freeze: return "freeze";
    case Action::Thaw: return "thaw";
  }
  return "unknown";
}

std::string_view result_name(Result result) {
  switch (result) {
    case Result::Ok: return "ok";
    case Result::Failed: return "failed";
    case Result::Skipped: return "skipped";
    case Result::Timeout: return "timeout";
  }
  return "unknown";
}

namespace {
bool is_transaction_op(uint8_t op) {
  return op == static_cast<uint8_t>(Op::HotBackup) || op == static_cast<uint8_t>(Op::Freeze) ||
         op == static_cast<uint8_t>(Op::Thaw);
}
void append(std::string& text, std::string_view item) {
  if (item.empty()) return;
  if (!text.empty()) text += "; ";
  text += item;
}
double ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }
constexpr std::chrono::milliseconds kFirstThawRetry{1000};
constexpr std::chrono::milliseconds kLastThawRetry{30000};
}  // namespace

TransactionEngine::TransactionEngine(sd_event* loop, const std::vector<Participant*>& participants,
                                     EngineSettings settings)
    : loop_(loop),
      settings_(settings),
      reply_timer_(loop, [this] { on_reply_deadline(); }),
      call_timer_(loop, [this] { on_call_timeout(); }),
      auto_thaw_timer_(loop,
                       [this] {
                         request_thaw(fmt::format("no THAW within {} s of the freeze: thawing automatically",
                                                  std::chrono::duration<double>(settings_.auto_thaw).count()));
                       }),
      thaw_retry_timer_(loop, [this] { request_thaw("retrying the thaw that failed"); }),
      thaw_retry_backoff_(kFirstThawRetry) {
  for (Layer layer : {Layer::Application, Layer::Filesystem})
    for (Participant* p : participants)
      if (p->layer() == layer) members_.push_back({p});
}

// The reply goes out a safety margin before the budget ends; participants must finish a margin
// before that, so that one that honours its deadline is never overtaken by the reply timer.
Clock::duration TransactionEngine::margin() const {
  return std::min<Clock::duration>(std::chrono::milliseconds(500), settings_.reply_budget / 10);
}
// Applications quiesce first, but may not take what the filesystems need after them: their check
// and freeze calls end a third of the budget before the phase's deadline.
Deadline TransactionEngine::call_deadline(const Phase& phase, const Member& m) const {
  if (phase.action == Action::Thaw || m.participant->layer() != Layer::Application) return phase.deadline;
  return Deadline(phase.deadline.at() - settings_.reply_budget / 3);
}

Clock::time_point TransactionEngine::reply_by(Clock::time_point received) const {
  return received + settings_.reply_budget - margin();
}

bool TransactionEngine::frozen() const {
  return std::any_of(members_.begin(), members_.end(), [](const Member& m) { return m.frozen; });
}

bool TransactionEngine::host_active() const {
  return txn_open_ && txn_origin_ == Origin::Host && (busy() || frozen() || awaiting_);
}

bool TransactionEngine::busy() const {
  return phase_ || std::any_of(members_.begin(), members_.end(), [](const Member& m) { return m.in_flight; });
}

std::vector<size_t> TransactionEngine::frozen_members_in_thaw_order() const {
  std::vector<size_t> steps;
  for (size_t i = members_.size(); i-- > 0;)
    if (members_[i].frozen) steps.push_back(i);
  return steps;
}

void TransactionEngine::set_state(State state) {
  if (state == state_) return;
  state_ = state;
  notify([&](EngineObserver& o) { o.state_changed(context()); });
}

void TransactionEngine::handle(uint8_t op, ReplyFn reply, Origin origin) {
  if (origin == Origin::Host && txn_open_ && txn_origin_ == Origin::Local)
    end_test(fmt::format("test snapshot aborted: the host sent {}", op_name(op)));
  std::string_view refused = awaiting_                                  ? "a request is already pending"
                             : stopping_                                ? "the agent is stopping"
                             : !is_transaction_op(op)                   ? "unsupported operation"
                             : origin == Origin::Local && host_active() ? "a host transaction is under way"
                                                                        : "";
  if (!refused.empty()) {
    bool delivered = reply(op, HvStatus::Fail);
    spdlog::warn("{} {} ({}) answered HV_E_FAIL: {}{}", context().tag(), op_name(op), op, refused,
                 delivered ? "" : " (reply not delivered)");
    return;
  }
  if (!txn_open_ || origin != txn_origin_ || (op == static_cast<uint8_t>(Op::HotBackup) && !frozen()))
    open_transaction(origin);
  op_ = op;
  awaiting_freeze_ = false;
  awaiting_ = Pending{next_seq_++, op, std::move(reply), Clock::now()};
  notify([&](EngineObserver& o) { o.request_received(context()); });
  if (Status s = reply_timer_.arm(reply_by(awaiting_->received)); !s) {
    // Without a deadline the budget cannot be promised: refuse to freeze, but always thaw.
    spdlog::error("{} {}", context().tag(), s.message());
    if (op != static_cast<uint8_t>(Op::Thaw)) answer(HvStatus::Fail, "cannot arm the reply deadline");
  }
  start_next();
}

void TransactionEngine::open_transaction(Origin origin) {
  if (txn_open_) end_transaction();
  ++txn_;
  txn_open_ = true;
  txn_origin_ = origin;
  txn_status_ = HvStatus::Ok;
  txn_started_ = Clock::now();
  freeze_answered_ok_ = false;
  thawed_early_ = false;
}

// The test snapshot ends here, failed: its pending request fails, a freeze under way is aborted,
// and what it froze is thawed before anything else starts.
void TransactionEngine::end_test(const std::string& why) {
  spdlog::warn("{} {}", context().tag(), why);
  txn_status_ = HvStatus::Fail;
  if (awaiting_) answer(HvStatus::Fail, why);
  abort_freeze(why);
  if (frozen()) {
    thaw_due_ = why;
    thaw_due_tears_ = false;
  }
  end_transaction();
}

// Starts whatever is due once nothing runs: a requested thaw first, then the host's request.
void TransactionEngine::start_next() {
  if (busy()) return;
  if (!thaw_due_.empty()) {
    std::string why = std::exchange(thaw_due_, {});
    if (frozen()) {
      spdlog::warn("{} {}", context().tag(), why);
      // Thawed behind the host's back: the snapshot may be torn.
      if (std::exchange(thaw_due_tears_, true)) txn_status_ = HvStatus::Fail;
      start_thaw(0, std::nullopt);
      return;
    }
  }
  if (awaiting_ && !awaiting_->started) {
    start_request();
    if (busy()) return;
  }
  maybe_finish_transaction();
  answer_thaw_waiters();
  maybe_finish_stop();
}

void TransactionEngine::start_request() {
  Pending& request = *awaiting_;
  request.started = true;
  Deadline deadline(reply_by(request.received) - margin());
  std::vector<size_t> everyone(members_.size());
  for (size_t i = 0; i < everyone.size(); ++i) everyone[i] = i;
  if (thaw_failed_ && request.op != static_cast<uint8_t>(Op::Thaw)) {
    answer(HvStatus::Fail,
           "a filesystem the agent froze earlier could not be thawed yet (retrying): nothing new "
           "is frozen until it is");
    return;
  }
  switch (static_cast<Op>(request.op)) {
    case Op::HotBackup: start_phase(Action::Check, everyone, deadline, request.seq); return;
    case Op::Freeze:
      if (!frozen()) {
        start_phase(Action::Freeze, everyone, deadline, request.seq);
      } else if (arm_auto_thaw()) {
        answer(HvStatus::Ok, "already frozen");
      } else {
        answer(HvStatus::Fail, "cannot arm the auto-thaw timer");
        request_thaw("the auto-thaw timer cannot be armed: thawing");
      }
      return;
    default:
      if (frozen())
        start_phase(Action::Thaw, frozen_members_in_thaw_order(), deadline, request.seq);
      else if (std::exchange(thawed_early_, false))
        answer(HvStatus::Fail,
               "the snapshot may not be consistent: what this transaction froze was thawed before this THAW "
               "(automatically, by an emergency thaw or after a fault)");
      else
        answer(HvStatus::Ok, "nothing was frozen");
      return;
  }
}

void TransactionEngine::start_phase(Action action, std::vector<size_t> steps, Deadline deadline, uint64_t seq,
                                    std::optional<std::string> fail_with) {
  phase_.emplace(action, std::move(steps), deadline, seq, std::move(fail_with));
  set_state(action == Action::Check ? State::Checking : action == Action::Freeze ? State::Freezing : State::Thawing);
  step();
}

// A thaw of everything frozen, filesystems first. `seq` names the request it answers (0: none).
void TransactionEngine::start_thaw(uint64_t seq, std::optional<std::string> fail_with) {
  start_phase(Action::Thaw, frozen_members_in_thaw_order(), Deadline::after(settings_.reply_budget), seq,
              std::move(fail_with));
}

// Starts the phase's next call, or finishes the phase.
void TransactionEngine::step() {
  while (phase_) {
    Phase& phase = *phase_;
    if (phase.action == Action::Thaw) answer_thaw_once_filesystems_thawed();
    if (phase.next == phase.steps.size()) {
      finish_phase();
      return;
    }
    size_t index = phase.steps[phase.next++];
    Member& m = members_[index];
    if (m.in_flight) {
      record(index, Outcome::failure("an earlier call has not returned yet"));
      continue;
    }
    Deadline deadline = call_deadline(phase, m);
    if (Status s = call_timer_.arm(deadline.at()); !s) {
      record(index, Outcome::failure(fmt::format("not called: {}", s.message())));
      continue;
    }
    uint64_t call = next_call_++;
    m.in_flight = true;
    m.call = call;
    m.action = phase.action;
    m.started = Clock::now();
    phase.call = call;
    phase.current = index;
    Done done = [this, index, call](Outcome outcome) { on_call_done(index, call, std::move(outcome)); };
    Txn txn{txn_};
    switch (phase.action) {
      case Action::Check: m.participant->check(txn, deadline, std::move(done)); break;
      case Action::Freeze: m.participant->freeze(txn, deadline, std::move(done)); break;
      case Action::Thaw: m.participant->thaw(txn, deadline, std::move(done)); break;
    }
    return;
  }
}

void TransactionEngine::on_call_done(size_t index, uint64_t call, Outcome outcome) {
  Member& m = members_[index];
  if (!m.in_flight || m.call != call) return;
  m.in_flight = false;
  outcome.took = Clock::now() - m.started;
  if (phase_ && phase_->call == call) {
    call_timer_.disarm();
    phase_->call = 0;
    record(index, std::move(outcome));
    step();
    return;
  }
  on_late_call(index, outcome);
  start_next();
}

// A call that overran its deadline has returned at last.
void TransactionEngine::on_late_call(size_t index, const Outcome& outcome) {
  Member& m = members_[index];
  spdlog::warn("{} {} {} returned {} after its deadline ({:.1f} ms){}{}", context().tag(), m.participant->name(),
               action_name(m.action), result_name(outcome.result), ms(outcome.took), outcome.detail.empty() ? "" : ": ",
               outcome.detail);
  if (m.action == Action::Freeze && (outcome.ok() || outcome.holds)) {
    m.frozen = true;
    request_thaw(fmt::format("the freeze of {} finished after its deadline: rolling back", m.participant->name()));
  }
  if (m.action == Action::Thaw && outcome.ok()) m.frozen = false;
}

void TransactionEngine::on_call_timeout() {
  if (!phase_ || phase_->call == 0) return;
  const Member& m = members_[phase_->current];
  give_up_on_call(Result::Timeout,
                  fmt::format("did not finish within its deadline ({:.0f} ms)", ms(Clock::now() - m.started)));
}

void TransactionEngine::give_up_on_call(Result result, std::string detail) {
  size_t index = phase_->current;
  phase_->call = 0;
  call_timer_.disarm();
  Member& m = members_[index];  // stays in flight until its Done comes
  if (m.action == Action::Freeze) m.participant->abort(Txn{txn_});
  record(index, {result, std::move(detail), Clock::now() - m.started, false, {}});
  step();
}

void TransactionEngine::abort_freeze(std::string_view why) {
  if (phase_ && phase_->action == Action::Freeze && phase_->call != 0)
    give_up_on_call(Result::Failed, fmt::format("aborted: {}", why));
}

void TransactionEngine::record(size_t index, Outcome outcome) {
  Member& m = members_[index];
  Phase& phase = *phase_;
  bool veto = outcome.failed() && m.participant->policy() == Policy::Required;
  if (phase.action == Action::Freeze && (outcome.ok() || outcome.holds)) m.frozen = true;
  // What a failed or overrunning thaw left frozen stays ours, to be thawed again.
  if (phase.action == Action::Thaw && outcome.ok()) {
    m.frozen = false;
    for (ThawWaiter& w : thaw_waiters_)
      w.thawed.push_back(
          fmt::format("{}{}{}", m.participant->name(), outcome.detail.empty() ? "" : ": ", outcome.detail));
  }
  notify([&](EngineObserver& o) { o.participant_finished(context(), m.participant->name(), phase.action, outcome); });
  std::string said = outcome.detail.empty()
                         ? std::string()
                         : fmt::format("{}: {}{}", m.participant->name(),
                                       outcome.failed() && !veto ? "optional, going on: " : "", outcome.detail);
  append(phase.detail, said);
  if (!veto) return;
  phase.vetoed = true;
  if (phase.veto_detail.empty()) phase.veto_detail = said;
  if (phase.action == Action::Freeze) phase.next = phase.steps.size();  // stop; roll back what froze
}

void TransactionEngine::answer_thaw_once_filesystems_thawed() {
  const Phase& phase = *phase_;
  if (!owed(phase)) return;
  for (size_t k = phase.next; k < phase.steps.size(); ++k)
    if (members_[phase.steps[k]].participant->layer() == Layer::Filesystem) return;
  if (phase.fail_with)
    answer(HvStatus::Fail, *phase.fail_with);
  else
    answer(phase.vetoed ? HvStatus::Fail : HvStatus::Ok, phase.detail);
}

void TransactionEngine::finish_phase() {
  Phase phase = std::move(*phase_);
  phase_.reset();
  switch (phase.action) {
    case Action::Check:
      set_state(frozen() ? State::Frozen : State::Idle);
      if (owed(phase)) {
        answer(phase.vetoed ? HvStatus::Fail : HvStatus::Ok, phase.vetoed ? phase.veto_detail : phase.detail);
        awaiting_freeze_ = !phase.vetoed;
      }
      break;
    case Action::Freeze: finish_freeze(phase); break;
    case Action::Thaw: finish_thaw(phase); break;
  }
  start_next();
}

void TransactionEngine::finish_freeze(Phase& phase) {
  if (phase.vetoed) {
    // Undo exactly what froze, then answer (if the reply is still owed).
    start_thaw(phase.seq, phase.veto_detail);
    return;
  }
  set_state(State::Frozen);
  if (!owed(phase)) {
    request_thaw("the freeze finished after its reply was due: rolling back");
  } else if (!arm_auto_thaw()) {
    answer(HvStatus::Fail, "cannot arm the auto-thaw timer");
    request_thaw("the auto-thaw timer cannot be armed: thawing");
  } else {
    freeze_answered_ok_ = true;
    thawed_early_ = false;  // a new freeze: what was thawed early is no longer what the host snapshots
    answer(HvStatus::Ok, phase.detail);
  }
}

void TransactionEngine::finish_thaw(Phase& phase) {
  set_state(frozen() ? State::Frozen : State::Idle);
  if (phase.seq == 0 && freeze_answered_ok_) thawed_early_ = true;
  if (frozen()) {
    retry_thaw_later(phase.detail);
    return;
  }
  if (thaw_failed_) spdlog::info("{} the thaw that had failed succeeded", context().tag());
  thaw_failed_ = false;
  thaw_retry_backoff_ = kFirstThawRetry;
  thaw_retry_timer_.disarm();
  auto_thaw_timer_.disarm();
  if (phase.seq == 0) spdlog::info("{} thawed{}{}", context().tag(), phase.detail.empty() ? "" : ": ", phase.detail);
}

// Still ours: retried with backoff (and by the auto-thaw, and on the next THAW) until it works.
void TransactionEngine::retry_thaw_later(std::string_view detail) {
  thaw_failed_ = true;
  spdlog::error("{} thaw incomplete, retrying in {} s: {}", context().tag(),
                std::chrono::duration<double>(thaw_retry_backoff_).count(), detail);
  if (Status s = thaw_retry_timer_.arm(Clock::now() + thaw_retry_backoff_); !s)
    spdlog::critical("{} {}: the thaw is retried only by the auto-thaw or a THAW", context().tag(), s.message());
  thaw_retry_backoff_ = std::min(thaw_retry_backoff_ * 2, kLastThawRetry);
}

void TransactionEngine::adopt_frozen(Participant* participant) {
  for (Member& m : members_)
    if (m.participant == participant) m.frozen = true;
  set_state(State::Frozen);
  retry_thaw_later(fmt::format("{}: what a previous agent left frozen", participant->name()));
}

bool TransactionEngine::arm_auto_thaw() {
  Status s = auto_thaw_timer_.arm(Clock::now() + settings_.auto_thaw);
  if (!s) spdlog::error("{} {}", context().tag(), s.message());
  return s.is_ok();
}

void TransactionEngine::answer(HvStatus status, std::string_view detail) {
  Pending request = std::move(*awaiting_);
  awaiting_.reset();
  reply_timer_.disarm();
  bool delivered = request.reply(request.op, status);
  if (status != HvStatus::Ok || !delivered) txn_status_ = HvStatus::Fail;
  notify([&](EngineObserver& o) {
    o.request_answered(context(), status, detail, Clock::now() - request.received, delivered);
  });
}

void TransactionEngine::on_reply_deadline() {
  if (!awaiting_) return;
  bool running = awaiting_->started && phase_ && phase_->seq == awaiting_->seq;
  if (!running)
    answer(HvStatus::Fail, "the previous phase is still running; request not started");
  else if (phase_->action == Action::Freeze)
    answer(HvStatus::Fail, "the phase did not finish within the reply budget; it will be rolled back");
  else
    answer(HvStatus::Fail, "the phase did not finish within the reply budget");
}

// Thaws now, or as soon as whatever runs has returned. (A freeze still running is rolled back by
// finish_freeze once its reply is no longer owed.)
void TransactionEngine::request_thaw(std::string why, bool tears) {
  if (!frozen()) return;
  thaw_due_ = std::move(why);
  thaw_due_tears_ = tears;
  start_next();
}

void TransactionEngine::thaw_now(std::string why, std::function<void(std::string)> done) {
  spdlog::warn("{} emergency thaw: {}", context().tag(), why);
  thaw_waiters_.push_back({std::move(done), {}});
  if (txn_open_ && txn_origin_ == Origin::Local)
    end_test("test snapshot aborted: emergency thaw");
  else
    abort_freeze(why);
  if (frozen()) {
    request_thaw(std::move(why));
  } else if (Status s = post(loop_, [this] { start_next(); }); !s) {
    spdlog::error("{} {}", context().tag(), s.message());
    start_next();
  }
}

// Once nothing runs and nothing is frozen (or what is frozen failed to thaw and is being retried),
// says to each emergency thaw what it did.
void TransactionEngine::answer_thaw_waiters() {
  if (thaw_waiters_.empty() || !thaw_due_.empty()) return;
  if (frozen() && !thaw_failed_) return request_thaw("emergency thaw");
  auto waiters = std::exchange(thaw_waiters_, {});
  for (ThawWaiter& w : waiters) {
    std::string said =
        w.thawed.empty() ? std::string("nothing was frozen") : fmt::format("thawed {}", fmt::join(w.thawed, "; "));
    if (frozen()) said += "; a thaw failed and is retried until it succeeds";
    w.done(std::move(said));
  }
}

void TransactionEngine::abandon(std::string_view why) {
  if (awaiting_) {
    awaiting_.reset();
    reply_timer_.disarm();
  }
  abort_freeze(why);
  request_thaw(fmt::format("{}: thawing what we froze", why));
}

void TransactionEngine::stop(std::function<void()> done) {
  stopping_ = true;
  on_stopped_ = std::move(done);
  // A THAW under way is let finish and answered; anything else is refused now.
  bool thawing = awaiting_ && phase_ && phase_->seq == awaiting_->seq && phase_->action == Action::Thaw;
  if (awaiting_ && !thawing) answer(HvStatus::Fail, "the agent is stopping");
  thaw_retry_timer_.disarm();
  abort_freeze("the agent is stopping");
  request_thaw("the agent is stopping: thawing what we froze");
  start_next();
}

void TransactionEngine::maybe_finish_transaction() {
  if (txn_open_ && !busy() && !frozen() && !awaiting_ && !awaiting_freeze_ && !thawed_early_) end_transaction();
}

void TransactionEngine::end_transaction() {
  txn_open_ = false;
  notify([&](EngineObserver& o) { o.transaction_finished(context(), txn_status_, Clock::now() - txn_started_); });
}

// Stops once everything is thawed, or once the stop's own thaw failed: what is left is named by
// the intent record, and the next agent's recovery thaws it.
void TransactionEngine::maybe_finish_stop() {
  if (!stopping_ || !on_stopped_ || busy() || (frozen() && !thaw_failed_)) return;
  if (frozen()) spdlog::critical("{} stopping with a thaw that failed: the next start retries it", context().tag());
  auto done = std::move(on_stopped_);
  on_stopped_ = nullptr;
  done();
}

}  // namespace hvvss
