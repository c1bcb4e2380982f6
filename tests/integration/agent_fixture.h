// The fixture of the tests that run the real hv-vss-agent against the real hv-vss-sim on scratch
// loop-mounted filesystems: it starts both (the agent always with an allow-list of exactly the
// test's mounts, and away from any system bus unless the test gives it one), reads replies from
// the simulator's timeline, and prints the logs of a test that failed.
#pragma once

#include "tests/integration/harness.h"

#include <gtest/gtest.h>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace hvvss::test {

std::string slurp(const std::string& path);

// How to start one agent; every field has a default that suits most tests.
struct AgentRun {
  std::vector<std::string> extra = {};                // more options
  std::optional<std::vector<std::string>> only = {};  // the allow-list; default: every scratch mount
  std::string log = {};                               // stderr; default: the test's agent.log
  std::string runtime_dir = {};                       // default: the test's run/
  std::string device = {};                            // default: the simulator's socket
  std::vector<std::string> env = {};                  // NAME=VALUE for the agent's environment
  std::string faults = {};                            // HV_VSS_FAULTS for the fault-injection shim
};

class AgentTest : public ::testing::Test {
 protected:
  void use(const std::vector<std::string>& types) { scratch_ = std::make_unique<Scratch>(types); }
  void TearDown() override;

  std::string dir() const { return scratch_->dir(); }
  std::string socket() const { return dir() + "/hv_vss.sock"; }
  std::string runtime_dir() const { return dir() + "/run"; }
  std::string agent_log() const { return dir() + "/agent.log"; }
  const std::vector<std::string>& mounts() const { return scratch_->mounts(); }

  Process& start_sim(std::vector<std::string> args);
  Process& start_agent(AgentRun run = {});
  // Reads the sim's timeline until the reply to `op`; returns its status.
  static std::string reply_to(Process& sim, const std::string& op);
  // The intent record names at least one filesystem.
  bool intent_recorded() const;
  // Stops an agent and returns its log. The log is written by a background thread, so it is read
  // only once the agent has exited, which drains the queue: never right after an event.
  std::string stop_and_read_log(Process& agent, const std::string& log = {});
  // Starts a probe writer on every scratch mount and expects each write to block: all frozen.
  std::vector<std::unique_ptr<ProbeWriter>> probes_blocked_on_every_mount() const;

  std::unique_ptr<Scratch> scratch_;
  std::vector<std::unique_ptr<Process>> sims_, agents_;
};

}  // namespace hvvss::test
