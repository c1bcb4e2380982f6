// The blocking adapter: a participant whose work is syscalls that may block (fsfreeze's syncfs,
// FIFREEZE and FITHAW) implements SyncParticipant, and BlockingParticipant runs each call on a
// worker thread of its own, delivering the Outcome back on the loop. abort() is passed straight
// to the participant from the loop thread, while its freeze may still block on the worker; the
// engine never waits on the worker.
#pragma once

#include "agent/participant.h"
#include "agent/status.h"
#include "agent/worker.h"

#include <memory>

namespace hvvss {

class SyncParticipant {
 public:
  virtual ~SyncParticipant() = default;
  virtual std::string_view name() const = 0;
  virtual Outcome check(Deadline deadline) = 0;
  virtual Outcome freeze(Deadline deadline) = 0;
  virtual Outcome thaw(Deadline deadline) = 0;
  virtual Outcome recover() = 0;
  // Called on the loop thread while freeze() may block on the worker: undo what is frozen as
  // soon as possible, on a thread of the participant's own if need be, and make the running
  // freeze stop and leave its part thawed. Must not block.
  virtual void abort() = 0;
};

class BlockingParticipant final : public Participant {
 public:
  static Status create(sd_event* loop, std::unique_ptr<SyncParticipant> impl, Policy policy, Layer layer,
                       std::unique_ptr<BlockingParticipant>* out);

  std::string_view name() const override { return impl_->name(); }
  Policy policy() const override { return policy_; }
  Layer layer() const override { return layer_; }
  void check(Txn txn, Deadline deadline, Done done) override;
  void freeze(Txn txn, Deadline deadline, Done done) override;
  void thaw(Txn txn, Deadline deadline, Done done) override;
  void abort(Txn txn) override;
  void recover(Done done) override;

 private:
  BlockingParticipant(sd_event* loop, std::unique_ptr<SyncParticipant> impl, Policy policy, Layer layer,
                      std::unique_ptr<Worker> worker);
  // Runs `call` on the worker and hands its Outcome to `done` on the loop.
  void run(std::function<Outcome()> call, Done done);

  sd_event* loop_;
  std::unique_ptr<SyncParticipant> impl_;
  Policy policy_;
  Layer layer_;
  std::unique_ptr<Worker> worker_;
};

}  // namespace hvvss
