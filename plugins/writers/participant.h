// The D-Bus writers as one participant of the engine, in the application layer. Each call fans
// out to every writer at once (io.github.hvvss.Writer1 Check, Freeze or Thaw with the transaction
// id), each under its own timeout inside the engine's deadline, and reports every writer's part.
// A required writer that fails or times out fails the call at once, and the writers already asked
// to Freeze are told Abort; an optional one is reported and the call goes on. Every writer that
// was asked to Freeze is told Thaw or Abort, unless its connection is gone.
#pragma once

#include "agent/participant.h"
#include "plugins/writers/registry.h"

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>
#include <memory>
#include <optional>
#include <vector>

namespace hvvss::writers {

class Writers final : public Participant {
 public:
  Writers(sd_event* loop, Registry& registry);
  ~Writers() override;
  Writers(const Writers&) = delete;
  Writers& operator=(const Writers&) = delete;

  std::string_view name() const override { return "writers"; }
  Policy policy() const override { return Policy::Required; }  // each writer's own policy decides
  Layer layer() const override { return Layer::Application; }
  void check(Txn txn, Deadline deadline, Done done) override { start(Action::Check, txn, deadline, std::move(done)); }
  void freeze(Txn txn, Deadline deadline, Done done) override { start(Action::Freeze, txn, deadline, std::move(done)); }
  void thaw(Txn txn, Deadline deadline, Done done) override { start(Action::Thaw, txn, deadline, std::move(done)); }
  void abort(Txn txn) override;
  // Writers are processes of their own: nothing of theirs outlives a dead agent's transaction.
  void recover(Done done) override;

 private:
  struct Call;  // one writer's call of the running round
  struct Round {
    Action action;
    Txn txn;
    Done done;
    Clock::time_point started;
    std::vector<PartOutcome> parts;
    std::optional<std::string> veto;  // the required writer that failed, and how
  };

  void start(Action action, Txn txn, Deadline deadline, Done done);
  void call(const Writer& writer, Deadline deadline);
  static int on_reply(sd_bus_message* m, void* userdata, sd_bus_error* error);
  void settle(Call* call, Result result, std::string detail);
  void veto(std::string why);
  void finish_if_done();
  void complete(Outcome outcome);
  void tell_abort(const Writer& writer);
  void forget_frozen(uint64_t writer_id);
  void on_departure(const Writer& writer, bool connected);

  sd_event* loop_;
  Registry& registry_;
  std::optional<Round> round_;
  std::vector<std::unique_ptr<Call>> calls_;  // the round's calls still waiting for a reply
  std::vector<Writer> frozen_;                // asked to Freeze and not yet told Thaw or Abort
  Txn frozen_txn_;
  bool starting_ = false;  // start() is still making the round's calls
};

}  // namespace hvvss::writers
