#include "agent/blocking.h"

#include "agent/event_loop.h"

#include <spdlog/spdlog.h>

namespace hvvss {

Status BlockingParticipant::create(sd_event* loop, std::unique_ptr<SyncParticipant> impl, Policy policy, Layer layer,
                                   std::unique_ptr<BlockingParticipant>* out) {
  std::unique_ptr<Worker> worker;
  if (Status s = Worker::create(loop, &worker); !s) return s.prefixed(impl->name());
  out->reset(new BlockingParticipant(loop, std::move(impl), policy, layer, std::move(worker)));
  return {};
}

BlockingParticipant::BlockingParticipant(sd_event* loop, std::unique_ptr<SyncParticipant> impl, Policy policy,
                                         Layer layer, std::unique_ptr<Worker> worker)
    : loop_(loop), impl_(std::move(impl)), policy_(policy), layer_(layer), worker_(std::move(worker)) {}

void BlockingParticipant::run(std::function<Outcome()> call, Done done) {
  if (worker_->busy()) {
    // The engine issues one call at a time per participant; this is a bug, not a state.
    Status s = post(loop_, [done] { done(Outcome::failure("an earlier call is still running")); });
    if (!s) spdlog::critical("{}: {}", name(), s.message());
    return;
  }
  auto outcome = std::make_shared<Outcome>();
  worker_->run([outcome, call = std::move(call)] { *outcome = call(); },
               [outcome, done = std::move(done)] { done(std::move(*outcome)); });
}

void BlockingParticipant::check(Txn, Deadline deadline, Done done) {
  run([this, deadline] { return impl_->check(deadline); }, std::move(done));
}

void BlockingParticipant::freeze(Txn, Deadline deadline, Done done) {
  run([this, deadline] { return impl_->freeze(deadline); }, std::move(done));
}

void BlockingParticipant::thaw(Txn, Deadline deadline, Done done) {
  run([this, deadline] { return impl_->thaw(deadline); }, std::move(done));
}

void BlockingParticipant::abort(Txn) { impl_->abort(); }

void BlockingParticipant::recover(Done done) {
  run([this] { return impl_->recover(); }, std::move(done));
}

}  // namespace hvvss
