#include "tests/integration/agent_fixture.h"

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace hvvss::test {

namespace fs = std::filesystem;

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), {}};
}

void AgentTest::TearDown() {
  if (HasFailure() && scratch_) {
    for (const auto& log : {agent_log(), dir() + "/sim.err"})
      std::fprintf(stderr, "---- %s\n%s\n", log.c_str(), slurp(log).c_str());
  }
  sims_.clear();
  agents_.clear();
  scratch_.reset();
}

Process& AgentTest::start_sim(std::vector<std::string> args) {
  std::vector<std::string> argv = {sim_bin(), "--socket", socket()};
  argv.insert(argv.end(), args.begin(), args.end());
  auto& sim = *sims_.emplace_back(std::make_unique<Process>(argv, dir() + "/sim.err", true));
  EXPECT_TRUE(sim.read_until({"\"listening\""}));
  return sim;
}

Process& AgentTest::start_agent(AgentRun run) {
  // Away from any system bus unless the test gives it one (a later assignment wins).
  std::vector<std::string> argv = {"/usr/bin/env", "DBUS_SYSTEM_BUS_ADDRESS=unix:path=" + dir() + "/no-bus"};
  argv.insert(argv.end(), run.env.begin(), run.env.end());
  if (!run.faults.empty()) {
    // ASan wants to be first among preloaded libraries; the shim only wraps ioctl.
    const char* asan = std::getenv("ASAN_OPTIONS");
    argv.insert(argv.end(), {"LD_PRELOAD=" + fault_shim(), "HV_VSS_FAULTS=" + run.faults,
                             std::string("ASAN_OPTIONS=") + (asan ? asan : "") + ":verify_asan_link_order=0"});
  }
  argv.insert(argv.end(),
              {agent_bin(), "--config", "/dev/null", "--device", run.device.empty() ? socket() : run.device,
               "--log-level", "debug", "--runtime-dir", run.runtime_dir.empty() ? runtime_dir() : run.runtime_dir});
  argv.emplace_back("--only-mounts");
  for (const auto& m : run.only.value_or(mounts())) argv.push_back(m);
  argv.insert(argv.end(), run.extra.begin(), run.extra.end());
  return *agents_.emplace_back(std::make_unique<Process>(argv, run.log.empty() ? agent_log() : run.log));
}

std::string AgentTest::reply_to(Process& sim, const std::string& op) {
  auto line = sim.read_until({"\"event\":\"reply\"", "\"op\":\"" + op + "\""});
  return line ? json_field(*line, "status") : "no reply";
}

bool AgentTest::intent_recorded() const {
  std::error_code ec;
  return !fs::is_empty(runtime_dir() + "/intent", ec) && !ec;
}

std::string AgentTest::stop_and_read_log(Process& agent, const std::string& log) {
  agent.kill(SIGTERM);
  EXPECT_EQ(agent.wait(), 0);
  return slurp(log.empty() ? agent_log() : log);
}

std::vector<std::unique_ptr<ProbeWriter>> AgentTest::probes_blocked_on_every_mount() const {
  std::vector<std::unique_ptr<ProbeWriter>> probes;
  for (const auto& m : mounts()) {
    probes.push_back(std::make_unique<ProbeWriter>(m));
    EXPECT_TRUE(probes.back()->blocks()) << m << " is not frozen";
  }
  return probes;
}

}  // namespace hvvss::test
