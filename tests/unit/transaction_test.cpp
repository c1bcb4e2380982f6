#include "agent/transaction.h"

#include <gtest/gtest.h>
#include <future>
#include <mutex>

namespace hvvss {
namespace {

using namespace std::chrono_literals;

// A participant that records every call in a shared journal and answers as scripted.
class ScriptedPlugin final : public Plugin {
 public:
  ScriptedPlugin(std::string name, std::vector<std::string>& journal, std::mutex& mutex)
      : name_(std::move(name)), journal_(journal), mutex_(mutex) {}
  std::string_view name() const override { return name_; }
  Outcome check(Deadline) override {
    if (check_gate.valid()) check_gate.wait();
    return record("check", check_ok);
  }
  Outcome freeze(Deadline) override {
    if (gate.valid()) gate.wait();
    return record("freeze", freeze_ok);
  }
  Outcome thaw(Deadline) override { return record("thaw", true); }

  bool check_ok = true;
  bool freeze_ok = true;
  std::shared_future<void> gate;        // freeze blocks until it is ready
  std::shared_future<void> check_gate;  // check blocks until it is ready

 private:
  Outcome record(const char* what, bool ok) {
    std::lock_guard lock(mutex_);
    journal_.push_back(name_ + "." + what);
    return ok ? Outcome::success() : Outcome::failure(name_ + " says no");
  }
  std::string name_;
  std::vector<std::string>& journal_;
  std::mutex& mutex_;
};

class Engine : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_GE(sd_event_new(&loop_), 0); }
  void TearDown() override {
    engine_.reset();
    sd_event_unref(loop_);
  }
  void make(EngineSettings settings = {}) {
    engine_ = std::make_unique<TransactionEngine>(loop_, std::vector<Plugin*>{&a_, &b_, &c_}, settings);
  }
  std::vector<std::string> journal() {
    std::lock_guard lock(mutex_);
    return journal_;
  }
  // Runs the loop until `done` holds; the bound only stops a broken test from hanging CI.
  template <typename Pred>
  bool run_until(Pred done) {
    for (int i = 0; i < 2000 && !done(); ++i) sd_event_run(loop_, 10'000);
    return done();
  }
  // Sends a request and runs the loop until it is answered.
  HvStatus request(Op op) {
    std::optional<HvStatus> status;
    engine_->handle(static_cast<uint8_t>(op), [&](uint8_t, HvStatus s) { status = s; });
    EXPECT_TRUE(run_until([&] { return status.has_value(); }));
    return status.value_or(HvStatus::InvalidArg);
  }

  sd_event* loop_ = nullptr;
  std::mutex mutex_;
  std::vector<std::string> journal_;
  ScriptedPlugin a_{"a", journal_, mutex_}, b_{"b", journal_, mutex_}, c_{"c", journal_, mutex_};
  std::unique_ptr<TransactionEngine> engine_;
};

TEST_F(Engine, HotBackupChecksEveryParticipant) {
  make();
  EXPECT_EQ(request(Op::HotBackup), HvStatus::Ok);
  EXPECT_EQ(journal(), (std::vector<std::string>{"a.check", "b.check", "c.check"}));
  EXPECT_EQ(engine_->state(), State::Idle);
}

TEST_F(Engine, HotBackupFailsWhenOneParticipantSaysNo) {
  b_.check_ok = false;
  make();
  EXPECT_EQ(request(Op::HotBackup), HvStatus::Fail);
}

TEST_F(Engine, FreezeInOrderThawInReverse) {
  make();
  EXPECT_EQ(request(Op::Freeze), HvStatus::Ok);
  EXPECT_EQ(engine_->state(), State::Frozen);
  EXPECT_TRUE(engine_->frozen());
  EXPECT_EQ(request(Op::Thaw), HvStatus::Ok);
  EXPECT_EQ(engine_->state(), State::Idle);
  EXPECT_EQ(journal(), (std::vector<std::string>{"a.freeze", "b.freeze", "c.freeze", "c.thaw", "b.thaw", "a.thaw"}));
}

TEST_F(Engine, FailedFreezeRollsBackWhatFrozeInReverse) {
  c_.freeze_ok = false;
  make();
  EXPECT_EQ(request(Op::Freeze), HvStatus::Fail);
  EXPECT_FALSE(engine_->frozen());
  EXPECT_EQ(journal(), (std::vector<std::string>{"a.freeze", "b.freeze", "c.freeze", "b.thaw", "a.thaw"}));
}

TEST_F(Engine, ThawWhileIdleIsOkAndTouchesNothing) {
  make();
  EXPECT_EQ(request(Op::Thaw), HvStatus::Ok);
  EXPECT_TRUE(journal().empty());
}

TEST_F(Engine, UnsupportedOperationsAreAnsweredFail) {
  make();
  for (Op op : {Op::Create, Op::BuComplete, Op::AutoRecover, Op::Register1}) EXPECT_EQ(request(op), HvStatus::Fail);
  EXPECT_TRUE(journal().empty());
}

TEST_F(Engine, FreezeThatOverrunsTheBudgetIsAnsweredFailThenRolledBack) {
  std::promise<void> release;
  b_.gate = release.get_future().share();
  make({.reply_budget = 200ms, .auto_thaw = 60s});
  // The reply arrives while b is still stuck in its freeze...
  EXPECT_EQ(request(Op::Freeze), HvStatus::Fail);
  EXPECT_EQ(journal(), (std::vector<std::string>{"a.freeze"}));
  // ...and once b returns, everything that froze is thawed again.
  release.set_value();
  ASSERT_TRUE(run_until([&] { return journal().size() == 6; }));
  EXPECT_EQ(journal(), (std::vector<std::string>{"a.freeze", "b.freeze", "c.freeze", "c.thaw", "b.thaw", "a.thaw"}));
  ASSERT_TRUE(run_until([&] { return engine_->state() == State::Idle; }));
  EXPECT_FALSE(engine_->frozen());
}

TEST_F(Engine, RequestArrivingDuringARollbackIsServedAfterIt) {
  std::promise<void> release;
  a_.gate = release.get_future().share();
  make({.reply_budget = 200ms, .auto_thaw = 60s});
  EXPECT_EQ(request(Op::Freeze), HvStatus::Fail);
  std::optional<HvStatus> thaw;
  engine_->handle(static_cast<uint8_t>(Op::Thaw), [&](uint8_t, HvStatus s) { thaw = s; });
  release.set_value();
  ASSERT_TRUE(run_until([&] { return thaw.has_value(); }));
  EXPECT_EQ(*thaw, HvStatus::Ok);
  EXPECT_FALSE(engine_->frozen());
}

TEST_F(Engine, FreezeWithoutThawIsUndoneAfterTheAutoThawDelay) {
  make({.reply_budget = 15s, .auto_thaw = 50ms});
  EXPECT_EQ(request(Op::Freeze), HvStatus::Ok);
  ASSERT_TRUE(run_until([&] { return !engine_->frozen(); }));
  EXPECT_EQ(journal().back(), "a.thaw");
  EXPECT_EQ(request(Op::Thaw), HvStatus::Ok);  // a late THAW is harmless
}

TEST_F(Engine, AutoThawThatComesDueDuringAnotherPhaseRunsAfterIt) {
  std::promise<void> release;
  a_.check_gate = release.get_future().share();
  make({.reply_budget = 15s, .auto_thaw = 1ms});
  EXPECT_EQ(request(Op::Freeze), HvStatus::Ok);
  std::optional<HvStatus> check;
  engine_->handle(static_cast<uint8_t>(Op::HotBackup), [&](uint8_t, HvStatus s) { check = s; });
  // Serve the loop past the auto-thaw deadline while the check is stuck on the worker.
  auto past = Clock::now() + 20ms;
  run_until([&] { return Clock::now() >= past; });
  EXPECT_TRUE(engine_->frozen());
  release.set_value();
  ASSERT_TRUE(run_until([&] { return check.has_value() && !engine_->frozen(); }));
  EXPECT_EQ(journal().back(), "a.thaw");
}

TEST_F(Engine, LosingTheChannelWhileFrozenThaws) {
  make();
  EXPECT_EQ(request(Op::Freeze), HvStatus::Ok);
  engine_->abandon("test");
  ASSERT_TRUE(run_until([&] { return !engine_->frozen() && engine_->state() == State::Idle; }));
  EXPECT_EQ(journal().back(), "a.thaw");
}

TEST_F(Engine, LosingTheChannelWhileFrozenAndBusyThawsRightAfterThePhase) {
  std::promise<void> release;
  a_.check_gate = release.get_future().share();
  make();  // auto-thaw 60 s: only the lost channel can explain a thaw here
  EXPECT_EQ(request(Op::Freeze), HvStatus::Ok);
  engine_->handle(static_cast<uint8_t>(Op::HotBackup), [](uint8_t, HvStatus) {});
  engine_->abandon("test");
  release.set_value();
  ASSERT_TRUE(run_until([&] { return !engine_->frozen() && engine_->state() == State::Idle; }));
  EXPECT_EQ(journal().back(), "a.thaw");
}

TEST_F(Engine, StoppingWhileFrozenAndBusyThawsRightAfterThePhase) {
  std::promise<void> release;
  a_.check_gate = release.get_future().share();
  make();
  EXPECT_EQ(request(Op::Freeze), HvStatus::Ok);
  engine_->handle(static_cast<uint8_t>(Op::HotBackup), [](uint8_t, HvStatus) {});
  bool stopped = false;
  engine_->stop([&] { stopped = true; });
  release.set_value();
  ASSERT_TRUE(run_until([&] { return stopped; }));
  EXPECT_FALSE(engine_->frozen());
}

TEST_F(Engine, LosingTheChannelDuringAFreezeRollsBackWhenItFinishes) {
  std::promise<void> release;
  c_.gate = release.get_future().share();
  make();
  bool replied = false;
  engine_->handle(static_cast<uint8_t>(Op::Freeze), [&](uint8_t, HvStatus) { replied = true; });
  engine_->abandon("test");
  release.set_value();
  ASSERT_TRUE(run_until([&] { return journal().size() == 6; }));
  EXPECT_FALSE(replied);
  EXPECT_EQ(journal().back(), "a.thaw");
}

TEST_F(Engine, StopThawsBeforeItReportsDone) {
  make();
  EXPECT_EQ(request(Op::Freeze), HvStatus::Ok);
  bool stopped = false;
  engine_->stop([&] { stopped = true; });
  ASSERT_TRUE(run_until([&] { return stopped; }));
  EXPECT_FALSE(engine_->frozen());
  EXPECT_EQ(journal().back(), "a.thaw");
  EXPECT_EQ(request(Op::HotBackup), HvStatus::Fail);  // a stopping agent starts nothing new
}

}  // namespace
}  // namespace hvvss
