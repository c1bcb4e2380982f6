// The host's side: named request sequences (scenarios) played against whatever daemon connects
// to the simulated device, with every reply checked for presence, timeliness and status.
#pragma once

#include "tools/hv-vss-sim/simulator.h"

#include <map>
#include <string>
#include <vector>

namespace hvvss::sim {

struct Options {
  std::string socket;  // the device is this SOCK_SEQPACKET socket ...
  std::string cuse;    // ... or the CUSE character device /dev/<cuse>
  std::string scenario = "backup";
  int count = 1;             // repeat N
  int reconnect_every = 0;   // repeat: drop the daemon after every K backups (0: never)
  double hold_sec = 1.0;     // between FREEZE and THAW
  bool hold_stdin = false;   // hold until a line arrives on stdin instead
  bool start_stdin = false;  // once a daemon registered, wait for a line on stdin before the first request
  double reply_budget_sec = 15.0;
  double freeze_timeout_sec = 900.0;  // VSS_FREEZE_TIMEOUT
  double timeout_sec = 30.0;          // HV_UTIL_TIMEOUT, for THAW and HOT_BACKUP
  double wait_daemon_sec = 10.0;
  double linger_sec = 0.1;                    // the device is served this long after the scenario
  std::map<std::string, std::string> expect;  // op name -> status name
};

const std::vector<std::pair<std::string, std::string>>& scenario_help();

// Runs the scenario; returns the process exit code (0 when every reply was right and on time).
int run_scenario(const Options& options, Timeline& timeline);

}  // namespace hvvss::sim
