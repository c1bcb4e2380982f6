// hv-vssctl's renderings of what the agent reports (text for people, JSON for machines) and the
// exit code each D-Bus error means. Times are rendered in UTC here, so that the text is exact.
#include "agent/ctl_format.h"
#include "agent/json.h"

#include <gtest/gtest.h>
#include <cstdlib>
#include <ctime>

namespace hvvss::ctl {
namespace {

// 2026-11-22 10:00:01.250 UTC, a Sunday.
constexpr uint64_t kFrozenAt = 1795341601250000;
constexpr uint64_t kSecond = 1000000;

class CtlFormat : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tz = std::getenv("TZ");
    if (tz) saved_tz_ = tz;
    had_tz_ = tz != nullptr;
    setenv("TZ", "UTC", 1);
    tzset();
  }
  void TearDown() override {
    if (had_tz_)
      setenv("TZ", saved_tz_.c_str(), 1);
    else
      unsetenv("TZ");
    tzset();
  }

  // The agent frozen for transaction 8, after transaction 7 had succeeded, with one writer.
  static AgentStatus frozen_status() {
    AgentStatus status;
    status.properties.state = "frozen";
    status.properties.frozen_since_usec = kFrozenAt;
    status.properties.transaction_id = 8;
    status.properties.last_transaction = TransactionSummary{7, "THAW", "HV_S_OK", 1234567};
    status.properties.last_transaction_steps =
        std::vector<Step>{{"writers/pgsql", "freeze", "ok", 30500}, {"fsfreeze", "freeze", "timeout", 850}};
    status.writers = {{"pgsql", ":1.42", "/org/example/Writer", true}};
    return status;
  }

 private:
  bool had_tz_ = false;
  std::string saved_tz_;
};

TEST(Json, QuoteEscapesQuotesBackslashesAndControlCharacters) {
  EXPECT_EQ(json_quote("plain"), "\"plain\"");
  EXPECT_EQ(json_quote("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(json_quote("line\nnext\ttab\x01"), "\"line\\u000anext\\u0009tab\\u0001\"");
  EXPECT_EQ(json_quote("µs ok"), "\"µs ok\"");  // UTF-8 passes through
}

TEST(Json, ObjectKeepsMembersInTheOrderAdded) {
  std::string object = JsonObject().string("b", "x").number("a", 18446744073709551615ull).boolean("c", false).str();
  EXPECT_EQ(object, R"({"b":"x","a":18446744073709551615,"c":false})");
  EXPECT_EQ(JsonObject().str(), "{}");
  EXPECT_EQ(json_array({}), "[]");
  EXPECT_EQ(json_array({"1", "\"two\""}), R"([1,"two"])");
}

TEST(Durations, ReadInTheLargestFittingUnit) {
  EXPECT_EQ(format_usec(0), "0us");
  EXPECT_EQ(format_usec(999), "999us");
  EXPECT_EQ(format_usec(1000), "1.0ms");
  EXPECT_EQ(format_usec(30500), "30.5ms");
  EXPECT_EQ(format_usec(1234567), "1.235s");
  EXPECT_EQ(format_usec(125 * kSecond + 500000), "2min 5.500s");
  EXPECT_EQ(format_ago(kFrozenAt, kFrozenAt + 3 * kSecond), "3s");
  EXPECT_EQ(format_ago(kFrozenAt, kFrozenAt + 125 * kSecond), "2min 5s");
  EXPECT_EQ(format_ago(kFrozenAt, kFrozenAt + 3723 * kSecond), "1h 2min");
  EXPECT_EQ(format_ago(kFrozenAt, kFrozenAt + 180000 * kSecond), "2d 2h");
  EXPECT_EQ(format_ago(kFrozenAt, kFrozenAt - kSecond), "0s");  // a clock stepped back
}

TEST_F(CtlFormat, TimesAreLocalWithMilliseconds) {
  EXPECT_EQ(format_timestamp(kFrozenAt), "Sun 2026-11-22 10:00:01 UTC");
  EXPECT_EQ(format_clock(kFrozenAt), "10:00:01.250");
}

TEST_F(CtlFormat, StatusTextAlignsLabelsAndTablesLikeTimedatectl) {
  EXPECT_EQ(format_status(frozen_status(), kFrozenAt + 3 * kSecond),
            "           State: frozen\n"
            "          Frozen: since Sun 2026-11-22 10:00:01 UTC (3s ago)\n"
            "     Transaction: 8\n"
            "Last transaction: 7 THAW HV_S_OK in 1.235s\n"
            "\n"
            "Steps of transaction 7:\n"
            "  PARTICIPANT    PHASE   OUTCOME  TIME\n"
            "  writers/pgsql  freeze  ok       30.5ms\n"
            "  fsfreeze       freeze  timeout  850us\n"
            "\n"
            "Writers:\n"
            "  NAME   OWNER  OBJECT               REQUIRED\n"
            "  pgsql  :1.42  /org/example/Writer  yes\n");
}

TEST_F(CtlFormat, StatusTextOfAFreshAgentSaysNotFrozenNoTransactionNoWriters) {
  AgentStatus status;
  status.properties = {"idle", 0, 0, TransactionSummary{}, std::vector<Step>{}};
  EXPECT_EQ(format_status(status, kFrozenAt),
            "           State: idle\n"
            "          Frozen: no\n"
            "     Transaction: 0\n"
            "Last transaction: none\n"
            "\n"
            "Writers: none registered\n");
}

TEST_F(CtlFormat, StatusJsonHasStableSnakeCaseKeys) {
  EXPECT_EQ(
      status_json(frozen_status()),
      R"({"state":"frozen","frozen_since_usec":1795341601250000,"transaction_id":8,)"
      R"("last_transaction":{"id":7,"op":"THAW","result":"HV_S_OK","duration_usec":1234567},)"
      R"("last_transaction_steps":[{"participant":"writers/pgsql","phase":"freeze","outcome":"ok","duration_usec":30500},)"
      R"({"participant":"fsfreeze","phase":"freeze","outcome":"timeout","duration_usec":850}],)"
      R"("writers":[{"name":"pgsql","owner":":1.42","object":"/org/example/Writer","required":true}]})");
}

TEST_F(CtlFormat, WritersListEscapesNamesInJsonAndSaysWhenEmpty) {
  std::vector<Writer> writers = {{"cache \"hot\"", ":1.7", "/w", false}};
  EXPECT_EQ(writers_json(writers), R"([{"name":"cache \"hot\"","owner":":1.7","object":"/w","required":false}])");
  EXPECT_EQ(format_writers(writers),
            "NAME         OWNER  OBJECT  REQUIRED\n"
            "cache \"hot\"  :1.7   /w      no\n");
  EXPECT_EQ(format_writers({}), "No writers registered.\n");
  EXPECT_EQ(writers_json({}), "[]");
}

TEST_F(CtlFormat, SnapshotPrintsStepsThenResult) {
  std::vector<Step> steps = {{"fsfreeze", "check", "ok", 85}, {"writers/db", "freeze", "failed", 1200}};
  EXPECT_EQ(format_snapshot("HV_E_FAIL", steps),
            "PARTICIPANT  PHASE   OUTCOME  TIME\n"
            "fsfreeze     check   ok       85us\n"
            "writers/db   freeze  failed   1.2ms\n"
            "\n"
            "Result: HV_E_FAIL\n");
  EXPECT_EQ(
      snapshot_json("HV_E_FAIL", steps),
      R"({"result":"HV_E_FAIL","steps":[{"participant":"fsfreeze","phase":"check","outcome":"ok","duration_usec":85},)"
      R"({"participant":"writers/db","phase":"freeze","outcome":"failed","duration_usec":1200}]})");
}

TEST_F(CtlFormat, MonitorLinesCarryTheTimeTheTransactionAndTheEvent) {
  EXPECT_EQ(format_event(PhaseChanged{5, "FREEZE", "freezing"}, kFrozenAt), "10:00:01.250 txn 5 FREEZE freezing");
  EXPECT_EQ(format_event(TransactionFinished{5, "HV_S_OK"}, kFrozenAt), "10:00:01.250 txn 5 finished HV_S_OK");
  EXPECT_EQ(event_json(PhaseChanged{5, "FREEZE", "freezing"}, kFrozenAt),
            R"({"event":"phase","time_usec":1795341601250000,"transaction":5,"op":"FREEZE","phase":"freezing"})");
  EXPECT_EQ(event_json(TransactionFinished{5, "HV_E_FAIL"}, kFrozenAt),
            R"({"event":"finished","time_usec":1795341601250000,"transaction":5,"result":"HV_E_FAIL"})");
}

TEST_F(CtlFormat, PropertiesChangedShowsOnlyWhatChanged) {
  PropertiesChanged event;
  event.changed.state = "thawing";
  event.changed.last_transaction = TransactionSummary{5, "THAW", "HV_S_OK", 2000};
  event.invalidated = {"LastTransactionSteps"};
  EXPECT_EQ(format_event(event, kFrozenAt),
            "10:00:01.250 changed State=thawing LastTransaction=(5 THAW HV_S_OK in 2.0ms) LastTransactionSteps=?");
  EXPECT_EQ(event_json(event, kFrozenAt),
            R"({"event":"properties","time_usec":1795341601250000,"changed":{"state":"thawing",)"
            R"("last_transaction":{"id":5,"op":"THAW","result":"HV_S_OK","duration_usec":2000}},)"
            R"("invalidated":["LastTransactionSteps"]})");
}

TEST(ExitCodes, NoOwnerOrNoBusMeansNotRunningEveryOtherErrorMeansFailed) {
  EXPECT_EQ(exit_code_for_error("org.freedesktop.DBus.Error.ServiceUnknown"), kExitNotRunning);
  EXPECT_EQ(exit_code_for_error("org.freedesktop.DBus.Error.NameHasNoOwner"), kExitNotRunning);
  EXPECT_EQ(exit_code_for_error("org.freedesktop.DBus.Error.NoServer"), kExitNotRunning);
  EXPECT_EQ(exit_code_for_error("org.freedesktop.DBus.Error.Disconnected"), kExitNotRunning);
  EXPECT_EQ(exit_code_for_error("org.freedesktop.DBus.Error.AccessDenied"), kExitFailed);
  EXPECT_EQ(exit_code_for_error("io.github.hvvss.Error.Busy"), kExitFailed);
  EXPECT_EQ(exit_code_for_error("org.freedesktop.DBus.Error.NoReply"), kExitFailed);
  EXPECT_EQ(exit_code_for_error("org.freedesktop.DBus.Error.Timeout"), kExitFailed);
}

TEST(ExitCodes, MessagesNameTheErrorOrSayTheAgentIsNotRunning) {
  EXPECT_EQ(describe_error("io.github.hvvss.Error.Busy", "a host transaction is running"),
            "io.github.hvvss.Error.Busy: a host transaction is running");
  EXPECT_EQ(describe_error("org.freedesktop.DBus.Error.ServiceUnknown", "The name is not activatable"),
            "hv-vss-agent is not running (no owner of io.github.hvvss.Agent1 on the system bus)");
  EXPECT_EQ(describe_error("org.freedesktop.DBus.Error.NoServer", "/run/dbus/system_bus_socket: No such file"),
            "cannot reach hv-vss-agent: the system bus is not available (/run/dbus/system_bus_socket: No such file)");
}

}  // namespace
}  // namespace hvvss::ctl
