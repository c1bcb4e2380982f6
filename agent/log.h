// Logging for the agent: spdlog, with an asynchronous sink (one writer thread, a bounded queue
// that drops the oldest line rather than block), so a frozen filesystem or a stalled journald
// can never stall the agent. Lines about a transaction carry a TxnTag prefix, which the journald sink
// turns into the structured fields HV_VSS_TXN, HV_VSS_OP and HV_VSS_PHASE.
#pragma once

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace hvvss {

// Names the transaction, host operation and phase a log line is about.
struct TxnTag {
  uint64_t txn = 0;
  std::string_view op;
  std::string_view phase;
};

// Parses the "[txn=N op=X phase=Y] " prefix back into fields (used by the journald sink).
struct ParsedTag {
  std::string txn, op, phase;
  std::string_view rest;  // the message after the prefix
};
std::optional<ParsedTag> parse_tag(std::string_view line);

namespace logging {

enum class Target { Stderr, Journal };

// Journal when systemd started us (JOURNAL_STREAM or INVOCATION_ID set), stderr otherwise.
Target detect_target();
std::optional<spdlog::level::level_enum> parse_level(std::string_view name);
void init(spdlog::level::level_enum level, Target target);
// Writes what is queued, waiting at most a second for a stuck target (a pipe nobody reads);
// false when the writer is stuck and what it had not written was dropped. The process must then
// end with _Exit(): exit() could wait forever for a lock the writer holds (stderr's).
[[nodiscard]] bool shutdown();

}  // namespace logging
}  // namespace hvvss

template <>
struct fmt::formatter<hvvss::TxnTag> : fmt::formatter<std::string_view> {
  template <typename Ctx>
  auto format(const hvvss::TxnTag& tag, Ctx& ctx) const {
    return fmt::format_to(ctx.out(), "[txn={} op={} phase={}]", tag.txn, tag.op, tag.phase);
  }
};
