#include "plugins/writers/participant.h"

#include "agent/event_loop.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <algorithm>
#include <cstring>

namespace hvvss::writers {

namespace {
constexpr const char* kInterface = "io.github.hvvss.Writer1";
constexpr uint64_t kBackstopUsec = 1'000'000;

const char* method(Action action) {
  switch (action) {
    case Action::Check: return "Check";
    case Action::Freeze: return "Freeze";
    case Action::Thaw: return "Thaw";
  }
  return "?";
}

uint64_t usec(Clock::duration d) {
  return static_cast<uint64_t>(std::max<int64_t>(0, std::chrono::duration_cast<std::chrono::microseconds>(d).count()));
}

double ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }
}  // namespace

// One writer's call. Its timeout is a timer of its own on the loop: sd-bus's own call timeouts
// are coalesced by sd-event (250 ms accuracy) and could fire after the engine's deadline.
struct Writers::Call {
  Call(Writers* self, Writer writer, Clock::duration timeout)
      : self(self), writer(std::move(writer)), started(Clock::now()), timeout(timeout), timer(self->loop_, [this] {
          this->self->settle(this, Result::Timeout, fmt::format("no reply within {:.0f} ms", ms(this->timeout)));
        }) {}
  ~Call() { sd_bus_slot_unref(slot); }
  Call(const Call&) = delete;
  Call& operator=(const Call&) = delete;
  Writers* self;
  Writer writer;
  Clock::time_point started;
  Clock::duration timeout;
  Timer timer;
  sd_bus_slot* slot = nullptr;
};

Writers::Writers(sd_event* loop, Registry& registry) : loop_(loop), registry_(registry) {
  registry_.on_departure([this](const Writer& writer, bool connected) { on_departure(writer, connected); });
}

Writers::~Writers() { registry_.on_departure(nullptr); }

void Writers::recover(Done done) {
  if (Status s = post(loop_, [done = std::move(done)] { done(Outcome::success()); }); !s)
    spdlog::critical("writers: {}", s.message());
}

void Writers::start(Action action, Txn txn, Deadline deadline, Done done) {
  round_.emplace(Round{action, txn, std::move(done), Clock::now(), {}, std::nullopt});
  std::vector<Writer> targets = action == Action::Thaw ? frozen_ : registry_.writers();
  if (action == Action::Freeze) {
    frozen_.clear();  // the engine asks a freeze only of writers that are thawed
    frozen_txn_ = txn;
  }
  starting_ = true;  // a writer that cannot be called must not end the round before the others are
  for (const Writer& w : targets) {
    if (round_->veto) break;  // a required writer could not even be called: the round is over
    call(w, deadline);
  }
  starting_ = false;
  // A thaw must succeed for the engine to count the writers thawed; there is nothing else to do.
  if (targets.empty())
    return complete(action == Action::Thaw ? Outcome::success()
                                           : Outcome{Result::Skipped, "no writer registered", {}, false, {}});
  finish_if_done();
}

void Writers::call(const Writer& writer, Deadline deadline) {
  // A writer's reply must come early enough for the round to finish before the engine's deadline.
  Clock::duration timeout = deadline.early() - Clock::now();
  if (writer.info.timeout) timeout = std::min<Clock::duration>(timeout, *writer.info.timeout);
  auto c = std::make_unique<Call>(this, writer, timeout);
  if (round_->action == Action::Freeze) frozen_.push_back(writer);  // asked: owed a Thaw or an Abort
  sd_bus* bus = registry_.bus();
  sd_bus_message* m = nullptr;
  int r = bus && timeout > Clock::duration::zero() ? 0 : -ETIMEDOUT;
  if (r >= 0)
    r = sd_bus_message_new_method_call(bus, &m, writer.info.owner.c_str(), writer.info.object.c_str(), kInterface,
                                       method(round_->action));
  if (r >= 0) r = sd_bus_message_append(m, "t", round_->txn.id);
  if (r >= 0) r = sd_bus_call_async(bus, &c->slot, m, &Writers::on_reply, c.get(), usec(timeout) + kBackstopUsec);
  if (r >= 0) {  // sd-bus's own timeout only backs up the call's timer
    Status s = c->timer.arm(c->started + timeout);
    if (!s) r = -s.error_number();
  }
  sd_bus_message_unref(m);
  Call* raw = c.get();
  calls_.push_back(std::move(c));
  if (r < 0)
    settle(raw, r == -ETIMEDOUT ? Result::Timeout : Result::Failed,
           r == -ETIMEDOUT ? "no time left for it" : fmt::format("cannot call it: {}", std::strerror(-r)));
}

int Writers::on_reply(sd_bus_message* m, void* userdata, sd_bus_error*) {
  auto* c = static_cast<Call*>(userdata);
  const sd_bus_error* e = sd_bus_message_get_error(m);
  if (!e) {
    c->self->settle(c, Result::Ok, {});
    return 0;
  }
  c->self->settle(c, Result::Failed, fmt::format("{}: {}", e->name, e->message ? e->message : ""));
  return 0;
}

// One writer's part is known: record it, and veto at once if a required writer failed.
void Writers::settle(Call* c, Result result, std::string detail) {
  auto it = std::find_if(calls_.begin(), calls_.end(), [c](const auto& p) { return p.get() == c; });
  if (it == calls_.end() || !round_) return;
  std::unique_ptr<Call> call = std::move(*it);
  calls_.erase(it);
  const Writer& w = call->writer;
  bool failed = result == Result::Failed || result == Result::Timeout;
  round_->parts.push_back({w.info.name, result, detail, Clock::now() - call->started});
  if (round_->action == Action::Thaw) {
    forget_frozen(w.id);  // told Thaw, whatever it answered
  } else if (round_->action == Action::Freeze && failed) {
    tell_abort(w);
    forget_frozen(w.id);
  }
  if (failed && w.info.required && round_->action != Action::Thaw) {
    veto(fmt::format("{} ({}): {}", w.info.name, result_name(result), detail));
    return;
  }
  finish_if_done();
}

// A required writer failed: stop waiting for the others, and undo what the round asked of them.
void Writers::veto(std::string why) {
  round_->veto = std::move(why);
  for (auto& c : calls_)
    round_->parts.push_back(
        {c->writer.info.name, Result::Skipped, "not waited for: " + *round_->veto, Clock::now() - c->started});
  calls_.clear();
  if (round_->action == Action::Freeze) {
    for (const Writer& w : frozen_) tell_abort(w);
    frozen_.clear();
  }
  finish_if_done();
}

void Writers::finish_if_done() {
  if (!round_ || !calls_.empty() || starting_) return;
  std::vector<std::string> problems;
  for (const PartOutcome& p : round_->parts)
    if (p.result != Result::Ok) problems.push_back(fmt::format("{}: {}", p.name, result_name(p.result)));
  Outcome outcome = round_->veto
                        ? Outcome::failure(*round_->veto)
                        : Outcome::success(problems.empty() ? "" : fmt::format("{}", fmt::join(problems, ", ")));
  outcome.parts = std::move(round_->parts);
  complete(std::move(outcome));
}

// Completes the round on the next loop iteration (never from inside the engine's call).
void Writers::complete(Outcome outcome) {
  Round round = std::move(*round_);
  round_.reset();
  outcome.took = Clock::now() - round.started;
  if (Status s = post(loop_, [done = std::move(round.done), outcome = std::move(outcome)] { done(outcome); }); !s)
    spdlog::critical("writers: {}", s.message());
}

void Writers::abort(Txn) {
  if (!round_ || round_->action != Action::Freeze) return;
  veto("aborted: the freeze did not finish in time");
}

void Writers::tell_abort(const Writer& w) {
  sd_bus* bus = registry_.bus();
  sd_bus_message* m = nullptr;
  int r =
      bus ? sd_bus_message_new_method_call(bus, &m, w.info.owner.c_str(), w.info.object.c_str(), kInterface, "Abort")
          : -ENOTCONN;
  if (r >= 0) r = sd_bus_message_set_expect_reply(m, 0);
  if (r >= 0) r = sd_bus_message_append(m, "t", frozen_txn_.id);
  if (r >= 0) r = sd_bus_send(bus, m, nullptr);
  sd_bus_message_unref(m);
  if (r < 0) spdlog::error("writers: cannot tell {} to abort: {}", w.info.name, std::strerror(-r));
}

void Writers::forget_frozen(uint64_t writer_id) {
  std::erase_if(frozen_, [writer_id](const Writer& w) { return w.id == writer_id; });
}

// A writer that leaves is never called again; one that unregistered but is still on the bus is
// told Abort first if it was asked to Freeze and not yet to Thaw.
void Writers::on_departure(const Writer& writer, bool connected) {
  bool was_frozen = std::any_of(frozen_.begin(), frozen_.end(), [&](const Writer& w) { return w.id == writer.id; });
  forget_frozen(writer.id);
  auto it = std::find_if(calls_.begin(), calls_.end(), [&](const auto& c) { return c->writer.id == writer.id; });
  if (was_frozen && connected) tell_abort(writer);
  if (it != calls_.end())
    settle(it->get(), Result::Failed, connected ? "unregistered during the call" : "left the bus during the call");
}

}  // namespace hvvss::writers
