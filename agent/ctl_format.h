// What hv-vssctl shows of hv-vss-agent: the values io.github.hvvss.Agent1 carries, and how they
// read for people (right-aligned "Label: value" lines and plain tables, like timedatectl and
// systemctl) and for machines (JSON with stable snake_case keys). Pure functions of their inputs,
// the clock included, so that tests reach every rendering; the D-Bus side is in ctl_bus.h.
#pragma once

#include "agent/dbus/names.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hvvss::ctl {

// One participant's step of a transaction: (participant, phase, outcome, duration in µs).
struct Step {
  std::string participant;
  std::string phase;
  std::string outcome;  // ok, failed, skipped, timeout
  uint64_t duration_usec = 0;
};

// A registered writer: (name, owner's unique bus name, object, required).
struct Writer {
  std::string name;
  std::string owner;
  std::string object;
  bool required = true;
};

// LastTransaction: (id, last host operation, HV_S_OK or HV_E_FAIL, duration in µs).
struct TransactionSummary {
  uint64_t id = 0;
  std::string op;
  std::string result;
  uint64_t duration_usec = 0;
};

// The agent's properties as GetAll or PropertiesChanged carry them: each is set only if it came.
struct AgentProperties {
  std::optional<std::string> state;
  std::optional<uint64_t> frozen_since_usec;  // CLOCK_REALTIME; 0: nothing frozen
  std::optional<uint64_t> transaction_id;
  std::optional<TransactionSummary> last_transaction;
  std::optional<std::vector<Step>> last_transaction_steps;
};

// What `status` shows.
struct AgentStatus {
  AgentProperties properties;
  std::vector<Writer> writers;
};

// The events `monitor` follows.
struct PhaseChanged {
  uint64_t transaction = 0;
  std::string op;
  std::string phase;
};
struct TransactionFinished {
  uint64_t transaction = 0;
  std::string result;
};
struct PropertiesChanged {
  AgentProperties changed;
  std::vector<std::string> invalidated;  // names of properties that changed without their value
};

// "850us", "12.3ms", "1.234s", "2min 3.500s": a step's or a transaction's duration.
std::string format_usec(uint64_t usec);
// "3s", "2min 5s", "1h 4min", "2d 3h": how long ago `then_usec` was at `now_usec` (CLOCK_REALTIME).
std::string format_ago(uint64_t then_usec, uint64_t now_usec);
// "Sun 2026-11-22 10:00:01 CET" in local time.
std::string format_timestamp(uint64_t realtime_usec);
// "10:00:01.123" in local time: when `monitor` saw an event.
std::string format_clock(uint64_t realtime_usec);

// Columns separated by two spaces, each as wide as its widest cell; every line starts with `indent`.
std::string format_table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows,
                         std::string_view indent = "");

std::string format_status(const AgentStatus& status, uint64_t now_usec);
std::string status_json(const AgentStatus& status);

std::string format_writers(const std::vector<Writer>& writers);
std::string writers_json(const std::vector<Writer>& writers);

// TestSnapshot's reply: the steps as a table, then the result.
std::string format_snapshot(std::string_view result, const std::vector<Step>& steps);
std::string snapshot_json(std::string_view result, const std::vector<Step>& steps);

// One line (without the newline) per event seen at `now_usec`.
std::string format_event(const PhaseChanged& event, uint64_t now_usec);
std::string format_event(const TransactionFinished& event, uint64_t now_usec);
std::string format_event(const PropertiesChanged& event, uint64_t now_usec);
std::string event_json(const PhaseChanged& event, uint64_t now_usec);
std::string event_json(const TransactionFinished& event, uint64_t now_usec);
std::string event_json(const PropertiesChanged& event, uint64_t now_usec);

// hv-vssctl's exit codes.
enum ExitCode : int {
  kExitOk = 0,
  kExitFailed = 1,      // the snapshot or the call failed
  kExitUsage = 2,       // the command line is wrong
  kExitNotRunning = 3,  // no agent answers on the system bus
};

// The exit code a D-Bus error name means: kExitNotRunning when the agent's name has no owner or
// the bus cannot be reached, kExitFailed for every other error.
ExitCode exit_code_for_error(std::string_view error_name);
// What hv-vssctl says on stderr after its name for an error: "NAME: MESSAGE", or a sentence
// saying that the agent is not running.
std::string describe_error(std::string_view error_name, std::string_view message);

}  // namespace hvvss::ctl
