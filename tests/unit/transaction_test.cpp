// The transaction engine against scripted participants on a real sd-event loop. Participants
// complete on the loop (through post), or hold their completion until the test releases it;
// tests wait on the engine's observer events and on replies, never on time.
#include "agent/transaction.h"

#include <gtest/gtest.h>
#include <algorithm>
#include <map>
#include <set>

namespace hvvss {
namespace {

using namespace std::chrono_literals;

// A participant that writes every call into a shared journal and answers as scripted.
class Scripted final : public Participant {
 public:
  Scripted(std::string name, std::vector<std::string>& journal, sd_event* loop, Layer layer = Layer::Filesystem,
           Policy policy = Policy::Required)
      : name_(std::move(name)), journal_(journal), loop_(loop), layer_(layer), policy_(policy) {}
  std::string_view name() const override { return name_; }
  Policy policy() const override { return policy_; }
  Layer layer() const override { return layer_; }
  void check(Txn, Deadline deadline, Done done) override { call(Action::Check, deadline, std::move(done)); }
  void freeze(Txn, Deadline deadline, Done done) override { call(Action::Freeze, deadline, std::move(done)); }
  void thaw(Txn, Deadline deadline, Done done) override { call(Action::Thaw, deadline, std::move(done)); }
  void abort(Txn) override { journal_.push_back(name_ + ".abort"); }
  void recover(Done done) override {
    ASSERT_TRUE(post(loop_, [done] { done(Outcome::success()); }));
  }

  // Completes a held call with its scripted outcome, or with `result` if given.
  void release(Action action, std::optional<Result> result = std::nullopt) {
    auto it = held_.find(action);
    ASSERT_NE(it, held_.end()) << name_ << " holds no " << action_name(action);
    Done done = std::move(it->second);
    held_.erase(it);
    done(outcome(result.value_or(fails.count(action) ? Result::Failed : Result::Ok)));
  }
  bool holding(Action action) const { return held_.count(action) > 0; }

  std::set<Action> fails;         // these calls fail
  std::set<Action> hold;          // these calls complete only on release()
  bool holds_on_failure = false;  // a failed call still holds something frozen
  std::optional<Deadline> last_deadline;

 private:
  void call(Action action, Deadline deadline, Done done) {
    journal_.push_back(name_ + "." + std::string(action_name(action)));
    last_deadline = deadline;
    if (hold.count(action)) {
      held_.emplace(action, std::move(done));
      return;
    }
    Outcome result = outcome(fails.count(action) ? Result::Failed : Result::Ok);
    ASSERT_TRUE(post(loop_, [done = std::move(done), result] { done(result); }));
  }
  Outcome outcome(Result result) const {
    Outcome o = result == Result::Ok ? Outcome::success() : Outcome::failure(name_ + " says no");
    o.holds = result != Result::Ok && holds_on_failure;
    return o;
  }

  std::string name_;
  std::vector<std::string>& journal_;
  sd_event* loop_;
  Layer layer_;
  Policy policy_;
  std::map<Action, Done> held_;
};

// Keeps the engine's events, in order, as short sentences.
class Recorder final : public EngineObserver {
 public:
  void participant_finished(const EventContext&, std::string_view participant, Action action,
                            const Outcome& outcome) override {
    events.push_back(fmt::format("{} {} {}", participant, action_name(action), result_name(outcome.result)));
  }
  void request_answered(const EventContext& at, HvStatus status, std::string_view, Clock::duration,
                        bool delivered) override {
    events.push_back(
        fmt::format("answered {} {}{}", op_name(at.op), status_name(status), delivered ? "" : " undelivered"));
  }
  void transaction_finished(const EventContext& at, HvStatus status, Clock::duration) override {
    events.push_back(fmt::format("transaction {} finished {}", at.txn, status_name(status)));
  }
  bool saw(const std::string& event) const { return std::find(events.begin(), events.end(), event) != events.end(); }
  std::vector<std::string> events;
};

class Engine : public ::testing::Test {
 protected:
  static sd_event* new_loop() {
    sd_event* loop = nullptr;
    EXPECT_GE(sd_event_new(&loop), 0);
    return loop;
  }
  void TearDown() override {
    engine_.reset();
    sd_event_unref(loop_);
  }
  void make(EngineSettings settings = {}, std::vector<Participant*> participants = {}) {
    if (participants.empty()) participants = {&a_, &b_, &c_};
    engine_ = std::make_unique<TransactionEngine>(loop_, participants, settings);
    engine_->add_observer(&recorder_);
  }
  // Runs the loop until `done` holds; the bound only stops a broken test from hanging CI.
  template <typename Pred>
  bool run_until(Pred done) {
    auto give_up = Clock::now() + 20s;
    while (!done() && Clock::now() < give_up) sd_event_run(loop_, 10'000);
    return done();
  }
  // Dispatches everything that is ready now.
  void drain() {
    for (int i = 0; i < 1000 && sd_event_run(loop_, 0) > 0; ++i) {
    }
  }
  // Sends a request without waiting; the replies it gets are counted.
  void send(Op op, Origin origin = Origin::Host) {
    replies_.emplace_back();
    size_t slot = replies_.size() - 1;
    engine_->handle(
        static_cast<uint8_t>(op),
        [this, slot](uint8_t, HvStatus s) {
          replies_[slot].push_back(s);
          return deliver_;
        },
        origin);
  }
  bool answered(size_t slot) const { return !replies_[slot].empty(); }
  // Sends a request, runs the loop until it is answered, and checks it was answered once.
  HvStatus request(Op op) {
    send(op);
    size_t slot = replies_.size() - 1;
    EXPECT_TRUE(run_until([&] { return answered(slot); }));
    drain();
    EXPECT_EQ(replies_[slot].size(), 1u) << "request " << op_name(static_cast<uint8_t>(op))
                                         << " answered more than once";
    return replies_[slot].empty() ? HvStatus::InvalidArg : replies_[slot].front();
  }

  sd_event* loop_ = new_loop();  // before the participants, which need it
  std::vector<std::string> journal_;
  Scripted a_{"a", journal_, loop_}, b_{"b", journal_, loop_}, c_{"c", journal_, loop_};
  Recorder recorder_;
  std::unique_ptr<TransactionEngine> engine_;
  std::vector<std::vector<HvStatus>> replies_;
  bool deliver_ = true;

  using Journal = std::vector<std::string>;
};

TEST_F(Engine, HotBackupChecksEveryParticipant) {
  make();
  EXPECT_EQ(request(Op::HotBackup), HvStatus::Ok);
  EXPECT_EQ(journal_, (Journal{"a.check", "b.check", "c.check"}));
  EXPECT_EQ(engine_->state(), State::Idle);
}

TEST_F(Engine, HotBackupFailsWhenARequiredParticipantSaysNo) {
  b_.fails = {Action::Check};
  make();
  EXPECT_EQ(request(Op::HotBackup), HvStatus::Fail);
  EXPECT_TRUE(recorder_.saw("b check failed"));
}

TEST_F(Engine, FreezeInOrderThawInReverse) {
  make();
  EXPECT_EQ(request(Op::Freeze), HvStatus::Ok);
  EXPECT_EQ(engine_->state(), State::Frozen);
  EXPECT_TRUE(engine_->frozen());
  EXPECT_EQ(request(Op::Thaw), HvStatus::Ok);
  EXPECT_EQ(engine_->state(), State::Idle);
  EXPECT_EQ(journal_, (Journal{"a.freeze", "b.freeze", "c.freeze", "c.thaw", "b.thaw", "a.thaw"}));
}

TEST_F(Engine, ApplicationsFreezeBeforeFilesystemsAndThawAfterThem) {
  Scripted app1("app1", journal_, loop_, Layer::Application), app2("app2", journal_, loop_, Layer::Application);
  make({}, {&a_, &app1, &app2});  // registration order does not matter
  EXPECT_EQ(request(Op::Freeze), HvStatus::Ok);
  EXPECT_EQ(request(Op::Thaw), HvStatus::Ok);
  ASSERT_TRUE(run_until([&] { return engine_->state() == State::Idle; }));
  EXPECT_EQ(journal_, (Journal{"app1.freeze", "app2.freeze", "a.freeze", "a.thaw", "app2.thaw", "app1.thaw"}));
}

TEST_F(Engine, ThawIsAnsweredOnceFilesystemsAreThawedAndTheNextRequestWaitsForApplications) {
  Scripted app("app", journal_, loop_, Layer::Application);
  app.hold = {Action::Thaw};
  make({}, {&app, &a_});
  EXPECT_EQ(request(Op::Freeze), HvStatus::Ok);
  EXPECT_EQ(request(Op::Thaw), HvStatus::Ok);  // while the application still resumes
  EXPECT_TRUE(app.holding(Action::Thaw));
  EXPECT_EQ(engine_->state(), State::Thawing);
  send(Op::HotBackup);
  drain();
  EXPECT_FALSE(answered(2));
  EXPECT_EQ(journal_.back(), "app.thaw");  // no check has started
  app.release(Action::Thaw);
  ASSERT_TRUE(run_until([&] { return answered(2); }));
  EXPECT_EQ(replies_[2], std::vector<HvStatus>{HvStatus::Ok});
}

TEST_F(Engine, FailedFreezeRollsBackExactlyWhatFrozeInReverse) {
  Scripted optional("opt", journal_, loop_, Layer::Filesystem, Policy::Optional);
  optional.fails = {Action::Freeze};
  c_.fails = {Action::Freeze};
  make({}, {&a_, &optional, &b_, &c_});
  EXPECT_EQ(request(Op::Freeze), HvStatus::Fail);
  EXPECT_FALSE(engine_->frozen());
  // The optional participant that failed is not thawed: it froze nothing.
  EXPECT_EQ(journal_, (Journal{"a.freeze", "opt.freeze", "b.freeze", "c.freeze", "b.thaw", "a.thaw"}));
  EXPECT_TRUE(recorder_.saw("opt freeze failed"));
  EXPECT_TRUE(recorder_.saw("c freeze failed"));
  EXPECT_TRUE(recorder_.saw("transaction 1 finished HV_E_FAIL"));
}

TEST_F(Engine, AFreezeThatFailsButStillHoldsSomethingIsThawedByTheRollback) {
  c_.fails = {Action::Freeze};
  c_.holds_on_failure = true;  // its own undo failed
  make();
  EXPECT_EQ(request(Op::Freeze), HvStatus::Fail);
  EXPECT_EQ(journal_, (Journal{"a.freeze", "b.freeze", "c.freeze", "c.thaw", "b.thaw", "a.thaw"}));
  EXPECT_FALSE(engine_->frozen());
}

TEST_F(Engine, OptionalParticipantThatFailsIsReportedAndTheSnapshotGoesOn) {
  Scripted optional("opt", journal_, loop_, Layer::Application, Policy::Optional);
  optional.fails = {Action::Check, Action::Freeze};
  make({}, {&optional, &a_});
  EXPECT_EQ(request(Op::HotBackup), HvStatus::Ok);
  EXPECT_EQ(request(Op::Freeze), HvStatus::Ok);
  EXPECT_EQ(request(Op::Thaw), HvStatus::Ok);
  EXPECT_EQ(journal_, (Journal{"opt.check", "a.check", "opt.freeze", "a.freeze", "a.thaw"}));
  EXPECT_TRUE(recorder_.saw("opt check failed"));
  EXPECT_TRUE(recorder_.saw("opt freeze failed"));
}

TEST_F(Engine, ThawWhileIdleIsOkAndTouchesNothing) {
  make();
  EXPECT_EQ(request(Op::Thaw), HvStatus::Ok);
  EXPECT_TRUE(journal_.empty());
}

TEST_F(Engine, UnsupportedOperationsAreAnsweredFail) {
  make();
  for (Op op : {Op::Create, Op::BuComplete, Op::AutoRecover, Op::Register1}) EXPECT_EQ(request(op), HvStatus::Fail);
  EXPECT_TRUE(journal_.empty());
}

TEST_F(Engine, ParticipantDeadlineFallsBeforeTheReplyIsDue) {
  b_.hold = {Action::Freeze};
  make({.reply_budget = 1s, .auto_thaw = 60s});
  auto sent = Clock::now();
  send(Op::Freeze);
  ASSERT_TRUE(run_until([&] { return answered(0); }));
  auto replied = Clock::now();
  // The participant's deadline lies inside the budget, before the reply went out...
  ASSERT_TRUE(b_.last_deadline);
  EXPECT_LT(b_.last_deadline->at(), replied);
  EXPECT_LT(b_.last_deadline->at(), sent + 1s);
  // ...so the engine had given up on it (and aborted it) before it answered.
  auto timeout = std::find(recorder_.events.begin(), recorder_.events.end(), "b freeze timeout");
  auto answer = std::find(recorder_.events.begin(), recorder_.events.end(), "answered FREEZE HV_E_FAIL");
  EXPECT_LT(timeout, answer);
  EXPECT_NE(std::find(journal_.begin(), journal_.end(), "b.abort"), journal_.end());
  b_.release(Action::Freeze, Result::Failed);
  ASSERT_TRUE(run_until([&] { return engine_->state() == State::Idle; }));
}

TEST_F(Engine, FreezeThatOverrunsTheBudgetIsAnsweredFailThenRolledBack) {
  b_.hold = {Action::Freeze};
  make({.reply_budget = 200ms, .auto_thaw = 60s});
  // The reply arrives while b is still stuck in its freeze; a, which froze, is thawed at once...
  EXPECT_EQ(request(Op::Freeze), HvStatus::Fail);
  EXPECT_EQ(journal_, (Journal{"a.freeze", "b.freeze", "b.abort", "a.thaw"}));
  // ...and b, whose freeze completes after all, is thawed as soon as it returns.
  b_.release(Action::Freeze, Result::Ok);
  ASSERT_TRUE(run_until([&] { return journal_.back() == "b.thaw"; }));
  ASSERT_TRUE(run_until([&] { return engine_->state() == State::Idle; }));
  EXPECT_FALSE(engine_->frozen());
}

TEST_F(Engine, RequestArrivingDuringARollbackIsServedAfterIt) {
  a_.hold = {Action::Freeze};
  make({.reply_budget = 200ms, .auto_thaw = 60s});
  EXPECT_EQ(request(Op::Freeze), HvStatus::Fail);
  send(Op::Thaw);
  drain();
  EXPECT_FALSE(answered(1));
  a_.release(Action::Freeze, Result::Ok);
  ASSERT_TRUE(run_until([&] { return answered(1); }));
  EXPECT_EQ(replies_[1], std::vector<HvStatus>{HvStatus::Ok});
  EXPECT_EQ(journal_.back(), "a.thaw");
  EXPECT_FALSE(engine_->frozen());
}

TEST_F(Engine, FreezeStaysFrozenUntilTheAutoThawDelayHasPassed) {
  make();  // auto-thaw 60 s
  auto before = Clock::now();
  EXPECT_EQ(request(Op::Freeze), HvStatus::Ok);
  drain();
  EXPECT_TRUE(engine_->frozen());
  ASSERT_TRUE(engine_->auto_thaw_due());
  EXPECT_GE(*engine_->auto_thaw_due(), before + 60s);
}

TEST_F(Engine, FreezeWithoutThawIsUndoneAfterTheAutoThawDelayAndALateThawIsAnsweredFail) {
  make({.reply_budget = 15s, .auto_thaw = 50ms});
  EXPECT_EQ(request(Op::Freeze), HvStatus::Ok);
  ASSERT_TRUE(run_until([&] { return !engine_->frozen(); }));
  EXPECT_EQ(journal_.back(), "a.thaw");
  // Thawed behind the host's back: the snapshot it took may be torn, and it is told so.
  EXPECT_EQ(request(Op::Thaw), HvStatus::Fail);
  EXPECT_TRUE(recorder_.saw("transaction 1 finished HV_E_FAIL"));
  EXPECT_EQ(request(Op::Thaw), HvStatus::Ok);  // that was said once; a THAW of nothing is fine
}

TEST_F(Engine, AFreezeAfterAnAutoThawStartsAfreshAndItsThawIsOk) {
  make({.reply_budget = 15s, .auto_thaw = 50ms});
  EXPECT_EQ(request(Op::Freeze), HvStatus::Ok);
  ASSERT_TRUE(run_until([&] { return !engine_->frozen(); }));
  EXPECT_EQ(request(Op::Freeze), HvStatus::Ok);  // no HOT_BACKUP in between
  EXPECT_EQ(request(Op::Thaw), HvStatus::Ok);
  EXPECT_TRUE(recorder_.saw("transaction 1 finished HV_E_FAIL"));
  EXPECT_EQ(request(Op::Thaw), HvStatus::Ok);  // nothing frozen, nothing thawed early
}

TEST_F(Engine, AThawAfterAFailedFreezeIsOk) {
  c_.fails = {Action::Freeze};
  make();
  EXPECT_EQ(request(Op::Freeze), HvStatus::Fail);
  EXPECT_EQ(request(Op::Thaw), HvStatus::Ok);  // the host knows the freeze failed
}

TEST_F(Engine, AFailedThawKeepsTheParticipantFrozenAndIsRetriedUntilItWorks) {
  b_.fails = {Action::Thaw};
  make();
  EXPECT_EQ(request(Op::Freeze), HvStatus::Ok);
  EXPECT_EQ(request(Op::Thaw), HvStatus::Fail);
  EXPECT_TRUE(engine_->frozen());
  EXPECT_TRUE(engine_->thaw_failed());
  // Nothing new is frozen (nor promised) while it is stuck.
  EXPECT_EQ(request(Op::HotBackup), HvStatus::Fail);
  EXPECT_EQ(request(Op::Freeze), HvStatus::Fail);
  b_.fails.clear();
  ASSERT_TRUE(run_until([&] { return !engine_->frozen(); }));  // the retry, after its backoff
  EXPECT_FALSE(engine_->thaw_failed());
  EXPECT_EQ(std::count(journal_.begin(), journal_.end(), "b.thaw"), 2);
  EXPECT_EQ(std::count(journal_.begin(), journal_.end(), "a.thaw"), 1);  // only what was left is retried
  EXPECT_EQ(request(Op::HotBackup), HvStatus::Ok);
}

TEST_F(Engine, StoppingWhenAThawKeepsFailingEndsAnyway) {
  b_.fails = {Action::Thaw};
  make();
  EXPECT_EQ(request(Op::Freeze), HvStatus::Ok);
  bool stopped = false;
  engine_->stop([&] { stopped = true; });
  ASSERT_TRUE(run_until([&] { return stopped; }));
  EXPECT_TRUE(engine_->frozen());  // left to the intent record and the next start
}

TEST_F(Engine, FreezeWhileFrozenReArmsTheAutoThaw) {
  make();
  EXPECT_EQ(request(Op::Freeze), HvStatus::Ok);
  auto first = engine_->auto_thaw_due();
  EXPECT_EQ(request(Op::Freeze), HvStatus::Ok);
  ASSERT_TRUE(first && engine_->auto_thaw_due());
  EXPECT_GT(*engine_->auto_thaw_due(), *first);
  EXPECT_EQ(journal_, (Journal{"a.freeze", "b.freeze", "c.freeze"}));  // nothing frozen twice
}

TEST_F(Engine, AutoThawThatComesDueDuringAnotherPhaseRunsAfterIt) {
  a_.hold = {Action::Check};
  make({.reply_budget = 15s, .auto_thaw = 1ms});
  EXPECT_EQ(request(Op::Freeze), HvStatus::Ok);
  send(Op::HotBackup);
  ASSERT_TRUE(run_until([&] { return !engine_->auto_thaw_due(); }));  // it came due...
  EXPECT_TRUE(engine_->frozen());                                     // ...while a's check runs
  a_.release(Action::Check);
  ASSERT_TRUE(run_until([&] { return answered(1) && !engine_->frozen(); }));
  EXPECT_EQ(journal_.back(), "a.thaw");
}

TEST_F(Engine, LosingTheChannelWhileFrozenThaws) {
  make();
  EXPECT_EQ(request(Op::Freeze), HvStatus::Ok);
  engine_->abandon("test");
  ASSERT_TRUE(run_until([&] { return !engine_->frozen() && engine_->state() == State::Idle; }));
  EXPECT_EQ(journal_.back(), "a.thaw");
}

TEST_F(Engine, LosingTheChannelWhileFrozenAndBusyThawsRightAfterThePhase) {
  a_.hold = {Action::Check};
  make();  // auto-thaw 60 s: only the lost channel can explain a thaw here
  EXPECT_EQ(request(Op::Freeze), HvStatus::Ok);
  send(Op::HotBackup);
  engine_->abandon("test");
  a_.release(Action::Check);
  ASSERT_TRUE(run_until([&] { return !engine_->frozen() && engine_->state() == State::Idle; }));
  EXPECT_EQ(journal_.back(), "a.thaw");
  EXPECT_FALSE(answered(1));  // nobody is left to answer
}

TEST_F(Engine, LosingTheChannelDuringAFreezeAbortsItAndRollsBackAtOnce) {
  c_.hold = {Action::Freeze};
  make();
  send(Op::Freeze);
  drain();
  engine_->abandon("test");
  // a and b are thawed without waiting for c, which is aborted...
  ASSERT_TRUE(run_until([&] { return journal_.back() == "a.thaw"; }));
  EXPECT_EQ(journal_, (Journal{"a.freeze", "b.freeze", "c.freeze", "c.abort", "b.thaw", "a.thaw"}));
  // ...and thawed in turn if its freeze completes after all.
  c_.release(Action::Freeze, Result::Ok);
  ASSERT_TRUE(run_until([&] { return journal_.back() == "c.thaw"; }));
  ASSERT_TRUE(run_until([&] { return engine_->state() == State::Idle; }));
  EXPECT_FALSE(answered(0));
}

TEST_F(Engine, StoppingDuringAFreezeAbortsItAndRollsBackAtOnce) {
  c_.hold = {Action::Freeze};
  make();
  send(Op::Freeze);
  drain();
  bool stopped = false;
  engine_->stop([&] { stopped = true; });
  EXPECT_EQ(replies_[0], std::vector<HvStatus>{HvStatus::Fail});
  ASSERT_TRUE(run_until([&] { return journal_.back() == "a.thaw"; }));
  EXPECT_EQ(journal_, (Journal{"a.freeze", "b.freeze", "c.freeze", "c.abort", "b.thaw", "a.thaw"}));
  EXPECT_FALSE(stopped);  // c's call has not returned yet
  c_.release(Action::Freeze, Result::Failed);
  ASSERT_TRUE(run_until([&] { return stopped; }));
}

TEST_F(Engine, StoppingWhileFrozenAndBusyThawsRightAfterThePhase) {
  a_.hold = {Action::Check};
  make();
  EXPECT_EQ(request(Op::Freeze), HvStatus::Ok);
  send(Op::HotBackup);
  bool stopped = false;
  engine_->stop([&] { stopped = true; });
  EXPECT_EQ(replies_[1], std::vector<HvStatus>{HvStatus::Fail});
  a_.release(Action::Check);
  ASSERT_TRUE(run_until([&] { return stopped; }));
  EXPECT_FALSE(engine_->frozen());
}

TEST_F(Engine, StoppingDuringAThawLetsItFinishAndAnswerOk) {
  a_.hold = {Action::Thaw};
  make();
  EXPECT_EQ(request(Op::Freeze), HvStatus::Ok);
  send(Op::Thaw);
  drain();
  bool stopped = false;
  engine_->stop([&] { stopped = true; });
  a_.release(Action::Thaw);
  ASSERT_TRUE(run_until([&] { return stopped; }));
  EXPECT_EQ(replies_[1], std::vector<HvStatus>{HvStatus::Ok});
}

TEST_F(Engine, StopThawsBeforeItReportsDone) {
  make();
  EXPECT_EQ(request(Op::Freeze), HvStatus::Ok);
  bool stopped = false;
  engine_->stop([&] { stopped = true; });
  ASSERT_TRUE(run_until([&] { return stopped; }));
  EXPECT_FALSE(engine_->frozen());
  EXPECT_EQ(journal_.back(), "a.thaw");
  EXPECT_EQ(request(Op::HotBackup), HvStatus::Fail);  // a stopping agent starts nothing new
}

TEST_F(Engine, UndeliveredReplyIsReportedAsSuch) {
  make();
  deliver_ = false;
  EXPECT_EQ(request(Op::Freeze), HvStatus::Ok);
  EXPECT_TRUE(recorder_.saw("answered FREEZE HV_S_OK undelivered"));
  EXPECT_FALSE(recorder_.saw("answered FREEZE HV_S_OK"));
}

TEST_F(Engine, ABackupIsOneTransactionThatFinishesOkAfterThaw) {
  make();
  EXPECT_EQ(request(Op::HotBackup), HvStatus::Ok);
  EXPECT_EQ(request(Op::Freeze), HvStatus::Ok);
  EXPECT_FALSE(recorder_.saw("transaction 1 finished HV_S_OK"));
  EXPECT_EQ(request(Op::Thaw), HvStatus::Ok);
  EXPECT_TRUE(recorder_.saw("transaction 1 finished HV_S_OK"));
  EXPECT_EQ(request(Op::HotBackup), HvStatus::Ok);
  EXPECT_EQ(request(Op::HotBackup), HvStatus::Ok);  // a check that no FREEZE followed
  EXPECT_TRUE(recorder_.saw("transaction 2 finished HV_S_OK"));
}

}  // namespace
}  // namespace hvvss

namespace hvvss {
namespace {

// Test snapshots (Origin::Local) and the emergency thaw.

TEST_F(Engine, AHostRequestEndsATestSnapshotAndIsServedAfterItsThaw) {
  make();
  send(Op::Freeze, Origin::Local);
  ASSERT_TRUE(run_until([&] { return answered(0); }));
  EXPECT_EQ(replies_[0], std::vector<HvStatus>{HvStatus::Ok});
  uint64_t test_txn = engine_->transaction_id();
  EXPECT_EQ(request(Op::HotBackup), HvStatus::Ok);
  EXPECT_FALSE(engine_->frozen());
  EXPECT_EQ(journal_, (Journal{"a.freeze", "b.freeze", "c.freeze", "c.thaw", "b.thaw", "a.thaw", "a.check", "b.check",
                               "c.check"}));
  EXPECT_TRUE(recorder_.saw(fmt::format("transaction {} finished HV_E_FAIL", test_txn)));
  EXPECT_GT(engine_->transaction_id(), test_txn);
}

TEST_F(Engine, AHostRequestDuringATestFreezeFailsItsRequestAndAbortsIt) {
  b_.hold = {Action::Freeze};
  make();
  send(Op::Freeze, Origin::Local);
  ASSERT_TRUE(run_until([&] { return b_.holding(Action::Freeze); }));
  send(Op::Freeze);
  EXPECT_EQ(replies_[0], std::vector<HvStatus>{HvStatus::Fail});
  b_.hold.clear();
  b_.release(Action::Freeze);  // the aborted freeze succeeds anyway: it is thawed too
  ASSERT_TRUE(run_until([&] { return answered(1); }));
  EXPECT_EQ(replies_[1], std::vector<HvStatus>{HvStatus::Ok});
  EXPECT_EQ(journal_,
            (Journal{"a.freeze", "b.freeze", "b.abort", "a.thaw", "b.thaw", "a.freeze", "b.freeze", "c.freeze"}));
}

TEST_F(Engine, ATestSnapshotIsRefusedWhileAHostTransactionRuns) {
  make();
  EXPECT_EQ(request(Op::Freeze), HvStatus::Ok);
  EXPECT_TRUE(engine_->host_active());
  send(Op::HotBackup, Origin::Local);
  EXPECT_EQ(replies_[1], std::vector<HvStatus>{HvStatus::Fail});
  EXPECT_EQ(request(Op::Thaw), HvStatus::Ok);
  EXPECT_FALSE(engine_->host_active());
}

TEST_F(Engine, EmergencyThawThawsEverythingAndTheHostsThawIsToldTheSnapshotIsTorn) {
  make();
  EXPECT_EQ(request(Op::Freeze), HvStatus::Ok);
  std::optional<std::string> said;
  engine_->thaw_now("asked by an admin", [&](std::string text) { said = std::move(text); });
  ASSERT_TRUE(run_until([&] { return said.has_value(); }));
  EXPECT_FALSE(engine_->frozen());
  EXPECT_EQ(*said, "thawed c; b; a");
  EXPECT_EQ(request(Op::Thaw), HvStatus::Fail);
}

TEST_F(Engine, EmergencyThawWithNothingFrozenSaysSo) {
  make();
  std::optional<std::string> said;
  engine_->thaw_now("asked by an admin", [&](std::string text) { said = std::move(text); });
  EXPECT_FALSE(said.has_value());  // never from inside the call
  ASSERT_TRUE(run_until([&] { return said.has_value(); }));
  EXPECT_EQ(*said, "nothing was frozen");
  EXPECT_TRUE(journal_.empty());
}

TEST_F(Engine, ApplicationsMustFinishTheirFreezeAThirdOfTheBudgetBeforeFilesystems) {
  Scripted app("app", journal_, loop_, Layer::Application);
  make({std::chrono::milliseconds(15000), std::chrono::milliseconds(60000)}, {&app, &a_});
  EXPECT_EQ(request(Op::Freeze), HvStatus::Ok);
  ASSERT_TRUE(app.last_deadline && a_.last_deadline);
  EXPECT_EQ(a_.last_deadline->at() - app.last_deadline->at(), std::chrono::milliseconds(5000));
}

}  // namespace
}  // namespace hvvss
