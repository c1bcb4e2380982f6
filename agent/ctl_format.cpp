#include "agent/ctl_format.h"

#include "agent/json.h"

#include <fmt/format.h>
#include <algorithm>
#include <ctime>

namespace hvvss::ctl {
namespace {

constexpr uint64_t kUsecPerSec = 1000000;

std::string local_time(uint64_t realtime_usec, const char* format) {
  time_t seconds = static_cast<time_t>(realtime_usec / kUsecPerSec);
  struct tm tm {};
  if (!localtime_r(&seconds, &tm)) return fmt::format("@{}", seconds);
  char text[64];
  size_t n = std::strftime(text, sizeof text, format, &tm);
  return std::string(text, n);
}

// Right-aligned labels, as timedatectl prints them.
std::string format_labels(const std::vector<std::pair<std::string, std::string>>& lines) {
  size_t width = 0;
  for (const auto& [label, value] : lines) width = std::max(width, label.size());
  std::string out;
  for (const auto& [label, value] : lines) out += fmt::format("{:>{}}: {}\n", label, width, value);
  return out;
}

std::string format_summary(const TransactionSummary& t) {
  if (t.id == 0) return "none";
  return fmt::format("{} {} {} in {}", t.id, t.op, t.result, format_usec(t.duration_usec));
}

std::string format_frozen(uint64_t since_usec, uint64_t now_usec) {
  if (since_usec == 0) return "no";
  return fmt::format("since {} ({} ago)", format_timestamp(since_usec), format_ago(since_usec, now_usec));
}

std::string steps_table(const std::vector<Step>& steps, std::string_view indent) {
  std::vector<std::vector<std::string>> rows;
  rows.reserve(steps.size());
  for (const auto& s : steps) rows.push_back({s.participant, s.phase, s.outcome, format_usec(s.duration_usec)});
  return format_table({"PARTICIPANT", "PHASE", "OUTCOME", "TIME"}, rows, indent);
}

std::string writers_table(const std::vector<Writer>& writers, std::string_view indent) {
  std::vector<std::vector<std::string>> rows;
  rows.reserve(writers.size());
  for (const auto& w : writers) rows.push_back({w.name, w.owner, w.object, w.required ? "yes" : "no"});
  return format_table({"NAME", "OWNER", "OBJECT", "REQUIRED"}, rows, indent);
}

std::string summary_json(const TransactionSummary& t) {
  return JsonObject()
      .number("id", t.id)
      .string("op", t.op)
      .string("result", t.result)
      .number("duration_usec", t.duration_usec)
      .str();
}

std::string step_json(const Step& s) {
  return JsonObject()
      .string("participant", s.participant)
      .string("phase", s.phase)
      .string("outcome", s.outcome)
      .number("duration_usec", s.duration_usec)
      .str();
}

std::string writer_json(const Writer& w) {
  return JsonObject()
      .string("name", w.name)
      .string("owner", w.owner)
      .string("object", w.object)
      .boolean("required", w.required)
      .str();
}

// The members for the properties that are set, in the contract's order.
JsonObject& add_properties(JsonObject& object, const AgentProperties& p) {
  if (p.state) object.string("state", *p.state);
  if (p.frozen_since_usec) object.number("frozen_since_usec", *p.frozen_since_usec);
  if (p.transaction_id) object.number("transaction_id", *p.transaction_id);
  if (p.last_transaction) object.raw("last_transaction", summary_json(*p.last_transaction));
  if (p.last_transaction_steps) object.raw("last_transaction_steps", json_array(*p.last_transaction_steps, step_json));
  return object;
}

JsonObject event_object(std::string_view name, uint64_t now_usec) {
  JsonObject object;
  object.string("event", name).number("time_usec", now_usec);
  return object;
}

bool name_has_no_owner(std::string_view error_name) {
  return error_name == "org.freedesktop.DBus.Error.ServiceUnknown" ||
         error_name == "org.freedesktop.DBus.Error.NameHasNoOwner";
}

bool bus_unreachable(std::string_view error_name) {
  return error_name == "org.freedesktop.DBus.Error.NoServer" || error_name == "org.freedesktop.DBus.Error.Disconnected";
}

}  // namespace

std::string format_usec(uint64_t usec) {
  if (usec < 1000) return fmt::format("{}us", usec);
  if (usec < kUsecPerSec) return fmt::format("{:.1f}ms", usec / 1e3);
  if (usec < 60 * kUsecPerSec) return fmt::format("{:.3f}s", usec / 1e6);
  return fmt::format("{}min {:.3f}s", usec / (60 * kUsecPerSec), (usec % (60 * kUsecPerSec)) / 1e6);
}

std::string format_ago(uint64_t then_usec, uint64_t now_usec) {
  uint64_t s = now_usec > then_usec ? (now_usec - then_usec) / kUsecPerSec : 0;
  if (s < 60) return fmt::format("{}s", s);
  if (s < 3600) return fmt::format("{}min {}s", s / 60, s % 60);
  if (s < 86400) return fmt::format("{}h {}min", s / 3600, s % 3600 / 60);
  return fmt::format("{}d {}h", s / 86400, s % 86400 / 3600);
}

std::string format_timestamp(uint64_t realtime_usec) { return local_time(realtime_usec, "%a %Y-%m-%d %H:%M:%S %Z"); }

std::string format_clock(uint64_t realtime_usec) {
  return fmt::format("{}.{:03}", local_time(realtime_usec, "%H:%M:%S"), realtime_usec % kUsecPerSec / 1000);
}

std::string format_table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows,
                         std::string_view indent) {
  std::vector<size_t> widths;
  widths.reserve(header.size());
  for (const auto& cell : header) widths.push_back(cell.size());
  for (const auto& row : rows)
    for (size_t i = 0; i < row.size() && i < widths.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  auto line = [&](const std::vector<std::string>& cells) {
    std::string out(indent);
    for (size_t i = 0; i < cells.size(); ++i)
      out += i + 1 < cells.size() ? fmt::format("{:<{}}  ", cells[i], widths[i]) : cells[i];
    return out + "\n";
  };
  std::string out = line(header);
  for (const auto& row : rows) out += line(row);
  return out;
}

std::string format_status(const AgentStatus& status, uint64_t now_usec) {
  const AgentProperties& p = status.properties;
  std::vector<std::pair<std::string, std::string>> labels;
  if (p.state) labels.emplace_back("State", *p.state);
  if (p.frozen_since_usec) labels.emplace_back("Frozen", format_frozen(*p.frozen_since_usec, now_usec));
  if (p.transaction_id) labels.emplace_back("Transaction", std::to_string(*p.transaction_id));
  if (p.last_transaction) labels.emplace_back("Last transaction", format_summary(*p.last_transaction));
  std::string out = format_labels(labels);
  if (p.last_transaction && p.last_transaction->id != 0 && p.last_transaction_steps &&
      !p.last_transaction_steps->empty())
    out += fmt::format("\nSteps of transaction {}:\n{}", p.last_transaction->id,
                       steps_table(*p.last_transaction_steps, "  "));
  if (status.writers.empty()) return out + "\nWriters: none registered\n";
  return out + fmt::format("\nWriters:\n{}", writers_table(status.writers, "  "));
}

std::string status_json(const AgentStatus& status) {
  JsonObject object;
  return add_properties(object, status.properties).raw("writers", writers_json(status.writers)).str();
}

std::string format_writers(const std::vector<Writer>& writers) {
  if (writers.empty()) return "No writers registered.\n";
  return writers_table(writers, "");
}

std::string writers_json(const std::vector<Writer>& writers) { return json_array(writers, writer_json); }

std::string format_snapshot(std::string_view result, const std::vector<Step>& steps) {
  return fmt::format("{}\nResult: {}\n", steps_table(steps, ""), result);
}

std::string snapshot_json(std::string_view result, const std::vector<Step>& steps) {
  return JsonObject().string("result", result).raw("steps", json_array(steps, step_json)).str();
}

std::string format_event(const PhaseChanged& event, uint64_t now_usec) {
  return fmt::format("{} txn {} {} {}", format_clock(now_usec), event.transaction, event.op, event.phase);
}

std::string format_event(const TransactionFinished& event, uint64_t now_usec) {
  return fmt::format("{} txn {} finished {}", format_clock(now_usec), event.transaction, event.result);
}

std::string format_event(const PropertiesChanged& event, uint64_t now_usec) {
  const AgentProperties& p = event.changed;
  std::string out = format_clock(now_usec) + " changed";
  if (p.state) out += fmt::format(" State={}", *p.state);
  if (p.frozen_since_usec) out += fmt::format(" FrozenSinceUSec={}", *p.frozen_since_usec);
  if (p.transaction_id) out += fmt::format(" TransactionId={}", *p.transaction_id);
  if (p.last_transaction) out += fmt::format(" LastTransaction=({})", format_summary(*p.last_transaction));
  if (p.last_transaction_steps)
    out += fmt::format(" LastTransactionSteps=[{} steps]", p.last_transaction_steps->size());
  for (const auto& name : event.invalidated) out += fmt::format(" {}=?", name);
  return out;
}

std::string event_json(const PhaseChanged& event, uint64_t now_usec) {
  return event_object("phase", now_usec)
      .number("transaction", event.transaction)
      .string("op", event.op)
      .string("phase", event.phase)
      .str();
}

std::string event_json(const TransactionFinished& event, uint64_t now_usec) {
  return event_object("finished", now_usec)
      .number("transaction", event.transaction)
      .string("result", event.result)
      .str();
}

std::string event_json(const PropertiesChanged& event, uint64_t now_usec) {
  JsonObject changed;
  return event_object("properties", now_usec)
      .raw("changed", add_properties(changed, event.changed).str())
      .raw("invalidated", json_array(event.invalidated, json_quote))
      .str();
}

ExitCode exit_code_for_error(std::string_view error_name) {
  return name_has_no_owner(error_name) || bus_unreachable(error_name) ? kExitNotRunning : kExitFailed;
}

std::string describe_error(std::string_view error_name, std::string_view message) {
  if (name_has_no_owner(error_name))
    return fmt::format("hv-vss-agent is not running (no owner of {} on the system bus)", kBusName);
  if (bus_unreachable(error_name))
    return fmt::format("cannot reach hv-vss-agent: the system bus is not available ({})", message);
  return fmt::format("{}: {}", error_name, message);
}

}  // namespace hvvss::ctl
