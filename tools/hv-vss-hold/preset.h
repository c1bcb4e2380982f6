// What hv-vss-hold runs: the client's command line and the lock and unlock statements. A preset
// knows them for one database: its client, the flags that make the client fit the line protocol
// (one result per line on stdout, no headers, stop at the first error, no prompts, no rc files)
// and statements that quiesce it for a storage snapshot. Without a preset, the caller gives the
// statements and the whole client command line.
#pragma once

#include "agent/status.h"

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hvvss::hold {

struct Preset {
  std::string_view name;
  std::string_view client;
  std::vector<std::string_view> flags;  // after the caller's client arguments
  std::vector<std::string_view> env;    // NAME=value, set unless the variable is set already
  std::string_view lock, unlock;
  // Sent before the lock: makes the server itself give up waiting for the lock ({} = seconds) a
  // little after hv-vss-hold does, so that a lock request whose client was killed at the timeout
  // does not linger on the server (MariaDB keeps waiting for a lock after the client is gone).
  std::string_view lock_wait_limit;
};

const std::vector<Preset>& presets();

// What the command line asked for.
struct Request {
  std::optional<std::string> preset;
  std::vector<std::string> args;  // the client's arguments; without a preset, the whole command line
  std::optional<std::string> client, lock, unlock;
  std::chrono::milliseconds timeout{10000};  // for the lock
};

struct Plan {
  std::vector<std::string> argv;
  std::vector<std::string> env;
  std::string lock, unlock;
};

// Fails (InvalidArgument) for an unknown preset, or, without one, a missing statement or client.
Status make_plan(const Request& request, Plan* plan);

}  // namespace hvvss::hold
