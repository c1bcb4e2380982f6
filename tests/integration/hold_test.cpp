// hv-vss-hold against real database servers of the test's own (tests/integration/db_harness.h):
// what it tells systemd, what the server shows while it holds (observed from the server, never by
// timing), and each way it fails. Skipped, saying why, where the server binaries are missing.
#include "tests/integration/db_harness.h"

#include <gtest/gtest.h>
#include <csignal>
#include <fstream>

namespace hvvss::test {
namespace {

std::string hold_bin() { return HV_VSS_HOLD_BIN; }

// The pid of the client that hv-vss-hold runs (its only child).
pid_t client_of(pid_t hold) {
  std::ifstream children("/proc/" + std::to_string(hold) + "/task/" + std::to_string(hold) + "/children");
  pid_t pid = -1;
  children >> pid;
  return pid;
}

// hv-vss-hold as a hook unit would run it, with a $NOTIFY_SOCKET of the test's own.
class Hold {
 public:
  Hold(const std::string& dir, const std::vector<std::string>& args)
      : notify_(dir + "/notify"), stderr_(dir + "/hold.err") {
    std::vector<std::string> argv{hold_bin()};
    argv.insert(argv.end(), args.begin(), args.end());
    process_ = std::make_unique<Process>(argv, stderr_, false, std::vector<std::string>{notify_.env()});
  }
  Process& process() { return *process_; }
  NotifySocket& notify() { return notify_; }
  std::string said() const { return read_file(stderr_); }

 private:
  NotifySocket notify_;
  std::string stderr_;
  std::unique_ptr<Process> process_;
};

std::vector<std::string> with(std::vector<std::string> front, const std::vector<std::string>& back) {
  front.insert(front.end(), back.begin(), back.end());
  return front;
}

TEST(HoldTest, MissingClientFailsNamingIt) {
  std::string dir = ::testing::TempDir();
  Process hold({hold_bin(), "--client", "/nonexistent/mariadb", "mariadb"}, dir + "/missing-client.err");
  EXPECT_EQ(hold.wait(), 1);
  EXPECT_NE(read_file(dir + "/missing-client.err").find("cannot run /nonexistent/mariadb: No such file or directory"),
            std::string::npos)
      << read_file(dir + "/missing-client.err");
}

class MariaDbHoldTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (auto why = PrivateMariaDb::missing()) GTEST_SKIP() << "skipped: " << *why;
    db_ = std::make_unique<PrivateMariaDb>();
    db_->query(
        "CREATE DATABASE t; CREATE TABLE t.innodb (x INT) ENGINE=InnoDB; CREATE TABLE t.myisam (x INT) ENGINE=MyISAM");
  }
  std::unique_ptr<Hold> start(const std::vector<std::string>& options = {}) {
    return std::make_unique<Hold>(db_->dir(), with(with(options, {GetParam()}), db_->client_args()));
  }
  // The INSERTs that wait for the lock (both presets' locks show the same state on MariaDB 10.11).
  std::string waiting_inserts() {
    return "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE STATE = 'Waiting for backup lock' AND INFO LIKE "
           "'INSERT%'";
  }
  // Another session takes what the preset's lock waits for: another backup for BACKUP STAGE, a
  // table's write lock for FLUSH TABLES WITH READ LOCK.
  std::unique_ptr<Process> block() {
    auto blocker = std::make_unique<Process>(
        with({"mariadb"}, with(db_->client_args(), {"--batch", "--skip-column-names", "--unbuffered"})),
        db_->dir() + "/blocker.err", true);
    blocker->write_stdin(
        std::string(backup_stage() ? "BACKUP STAGE START; BACKUP STAGE BLOCK_COMMIT" : "LOCK TABLES t.innodb WRITE") +
        "; SELECT 'held';");
    EXPECT_EQ(blocker->read_line(), "held");
    return blocker;
  }
  void unblock(Process& blocker) {
    blocker.write_stdin(std::string(backup_stage() ? "BACKUP STAGE END" : "UNLOCK TABLES") + "; SELECT 'released';");
    EXPECT_EQ(blocker.read_line(), "released");
  }
  bool backup_stage() const { return GetParam() == "mariadb"; }
  // hv-vss-hold's lock request waits for the blocker.
  std::string waiting_lock() const {
    return std::string(
               "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE STATE = 'Waiting for backup lock' "
               "AND INFO = '") +
           (backup_stage() ? "BACKUP STAGE START" : "FLUSH TABLES WITH READ LOCK") + "'";
  }
  std::unique_ptr<PrivateMariaDb> db_;
};

INSTANTIATE_TEST_SUITE_P(Presets, MariaDbHoldTest, ::testing::Values("mariadb", "mysql"));

TEST_P(MariaDbHoldTest, ReadyOnlyOnceLockedThenInsertsWaitUntilSigtermUnlocks) {
  auto blocker = block();
  auto hold = start();
  // While its lock request waits (as the server shows), nothing has been said to systemd.
  ASSERT_TRUE(db_->eventually(waiting_lock(), "1")) << db_->query("SHOW PROCESSLIST");
  EXPECT_FALSE(hold->notify().receive(std::chrono::milliseconds(0)));
  unblock(*blocker);
  auto ready = hold->notify().receive();
  ASSERT_TRUE(ready) << hold->said();
  EXPECT_NE(ready->find("READY=1"), std::string::npos) << *ready;
  EXPECT_NE(ready->find("STATUS=holding: "), std::string::npos) << *ready;
  // The lock is held as READY=1 arrives: a write that may not wait for locks fails at once.
  auto probe = db_->start_query("SET STATEMENT lock_wait_timeout = 0 FOR INSERT INTO t.innodb VALUES (1)", "probe");
  EXPECT_EQ(probe->wait(), 1);
  EXPECT_NE(read_file(db_->dir() + "/probe.err").find("ERROR 1205"), std::string::npos)
      << read_file(db_->dir() + "/probe.err");
  // Writes to both engines wait for the lock, as the server shows.
  auto innodb = db_->start_query("INSERT INTO t.innodb VALUES (1)", "insert-innodb");
  auto myisam = db_->start_query("INSERT INTO t.myisam VALUES (1)", "insert-myisam");
  ASSERT_TRUE(db_->eventually(waiting_inserts(), "2")) << db_->query("SHOW PROCESSLIST");
  EXPECT_EQ(db_->query("SELECT COUNT(*) FROM t.innodb"), "0");
  hold->process().kill(SIGTERM);
  EXPECT_EQ(hold->process().wait(), 0) << hold->said();
  auto stopping = hold->notify().receive();
  ASSERT_TRUE(stopping);
  EXPECT_NE(stopping->find("STOPPING=1"), std::string::npos) << *stopping;
  EXPECT_EQ(innodb->wait(), 0);
  EXPECT_EQ(myisam->wait(), 0);
  EXPECT_EQ(db_->query("SELECT (SELECT COUNT(*) FROM t.innodb) + (SELECT COUNT(*) FROM t.myisam)"), "2");
  EXPECT_NE(hold->said().find("unlock: confirmed"), std::string::npos) << hold->said();
}

TEST_P(MariaDbHoldTest, FailingLockStatementFailsNamingItAndNeverTellsReady) {
  auto hold = start({"--lock", "FLUSH TABLES WITH READ LOCKS"});
  EXPECT_EQ(hold->process().wait(), 1);
  std::string said = hold->said();
  EXPECT_NE(said.find("lock statement failed ("), std::string::npos) << said;
  EXPECT_NE(said.find("FLUSH TABLES WITH READ LOCKS)"), std::string::npos) << said;
  EXPECT_NE(said.find("ERROR 1064 (42000)"), std::string::npos) << said;
  EXPECT_FALSE(hold->notify().receive(std::chrono::milliseconds(0)));  // it has exited: all it sent is here
}

TEST_P(MariaDbHoldTest, ClientDyingWhileHoldingFailsAtOnceAndTheLockIsGone) {
  auto hold = start();
  ASSERT_TRUE(hold->notify().receive()) << hold->said();
  pid_t client = client_of(hold->process().pid());
  ASSERT_GT(client, 0);
  kill(client, SIGKILL);
  EXPECT_EQ(hold->process().wait(), 1);  // without a SIGTERM: it noticed by itself
  std::string said = hold->said();
  EXPECT_NE(said.find("was killed by signal 9 (SIGKILL) while holding the lock"), std::string::npos) << said;
  auto insert = db_->start_query("INSERT INTO t.innodb VALUES (1)", "insert");
  EXPECT_EQ(insert->wait(), 0);
}

TEST_P(MariaDbHoldTest, LockTimeoutFailsAndTheServerDropsTheRequest) {
  auto blocker = block();
  auto hold = start({"--timeout", "1s"});
  EXPECT_EQ(hold->process().wait(), 1);
  std::string said = hold->said();
  EXPECT_NE(said.find("lock statement not confirmed within 1s"), std::string::npos) << said;
  EXPECT_FALSE(hold->notify().receive(std::chrono::milliseconds(0)));
  // The killed client's request does not linger: the server gives up on it (lock_wait_timeout)
  // while the blocker still holds the lock.
  EXPECT_TRUE(db_->eventually(waiting_lock(), "0")) << db_->query("SHOW PROCESSLIST");
  unblock(*blocker);
}

class PostgresHoldTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = PrivatePostgres::missing()) GTEST_SKIP() << "skipped: " << *why;
    db_ = std::make_unique<PrivatePostgres>();
    db_->query("CREATE TABLE t (x int)");
  }
  std::unique_ptr<Hold> start(const std::vector<std::string>& front) {
    return std::make_unique<Hold>(db_->dir(), with(front, db_->client_args()));
  }
  std::string log() const { return read_file(db_->log_path()); }
  std::unique_ptr<PrivatePostgres> db_;
};

TEST_F(PostgresHoldTest, BackupIsInProgressFromReadyUntilSigtermStopsIt) {
  auto hold = start({"postgresql"});
  auto ready = hold->notify().receive();
  ASSERT_TRUE(ready) << hold->said();
  EXPECT_NE(ready->find("READY=1"), std::string::npos) << *ready;
  // The server finished pg_backup_start in hv-vss-hold's session before READY=1, and that session
  // is still open, outside any transaction.
  EXPECT_NE(log().find("hv-vss-hold LOG:  duration:"), std::string::npos);
  EXPECT_NE(log().find("statement: SELECT pg_backup_start('hv-vss-hold', true);"), std::string::npos) << log();
  EXPECT_EQ(db_->query("SELECT state FROM pg_stat_activity WHERE application_name = 'hv-vss-hold'"), "idle");
  EXPECT_EQ(log().find("pg_backup_stop"), std::string::npos);
  hold->process().kill(SIGTERM);
  EXPECT_EQ(hold->process().wait(), 0) << hold->said();
  EXPECT_NE(log().find("statement: SELECT lsn FROM pg_backup_stop(false);"), std::string::npos) << log();
  EXPECT_EQ(log().find("aborting backup"), std::string::npos) << log();
  EXPECT_TRUE(db_->eventually("SELECT COUNT(*) FROM pg_stat_activity WHERE application_name = 'hv-vss-hold'", "0"));
}

TEST_F(PostgresHoldTest, ClientDyingWhileHoldingFailsAndTheServerAbortsTheBackup) {
  auto hold = start({"postgresql"});
  ASSERT_TRUE(hold->notify().receive()) << hold->said();
  pid_t client = client_of(hold->process().pid());
  ASSERT_GT(client, 0);
  kill(client, SIGKILL);
  EXPECT_EQ(hold->process().wait(), 1);
  EXPECT_NE(hold->said().find("psql was killed by signal 9 (SIGKILL) while holding the lock"), std::string::npos)
      << hold->said();
  EXPECT_TRUE(
      file_gets_text(db_->log_path(), "aborting backup due to backend exiting before pg_backup_stop was called"))
      << log();
}

TEST_F(PostgresHoldTest, FailingLockStatementFailsWithWhatPsqlSaid) {
  auto hold = start({"--lock", "SELECT pg_backup_start('a'); SELECT pg_backup_start('b')", "postgresql"});
  EXPECT_EQ(hold->process().wait(), 1);
  std::string said = hold->said();
  EXPECT_NE(said.find("lock statement failed (SELECT pg_backup_start('a'); SELECT pg_backup_start('b'))"),
            std::string::npos)
      << said;
  EXPECT_NE(said.find("ERROR:  a backup is already in progress in this session"), std::string::npos) << said;
  EXPECT_FALSE(hold->notify().receive(std::chrono::milliseconds(0)));
}

TEST_F(PostgresHoldTest, GenericFormHoldsATableLockThatMakesWritesWait) {
  auto hold = start({"--lock", "BEGIN; LOCK TABLE t IN EXCLUSIVE MODE", "--unlock", "COMMIT", "--", "psql", "-X", "-q",
                     "-A", "-t", "-v", "ON_ERROR_STOP=1"});
  ASSERT_TRUE(hold->notify().receive()) << hold->said();
  auto insert = db_->start_query("INSERT INTO t VALUES (1)", "writer");
  ASSERT_TRUE(
      db_->eventually("SELECT wait_event_type FROM pg_stat_activity WHERE application_name = 'writer'", "Lock"));
  hold->process().kill(SIGTERM);
  EXPECT_EQ(hold->process().wait(), 0) << hold->said();
  EXPECT_EQ(insert->wait(), 0);
  EXPECT_EQ(db_->query("SELECT COUNT(*) FROM t"), "1");
}

}  // namespace
}  // namespace hvvss::test
