// Where hv-vss-agent is on the system bus, for the agent (agent/bus) and its clients (hv-vssctl):
// the contract is agent/dbus/io.github.hvvss.Agent1.xml.
#pragma once

namespace hvvss {

inline constexpr const char* kBusName = "io.github.hvvss.Agent1";
inline constexpr const char* kBusPath = "/io/github/hvvss/Agent1";
inline constexpr const char* kBusInterface = "io.github.hvvss.Agent1";

}  // namespace hvvss
