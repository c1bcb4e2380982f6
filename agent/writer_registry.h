// What the agent's D-Bus service needs from the writers plugin: the registry behind
// RegisterWriter, UnregisterWriter and ListWriters. The service decides who may call (from the
// caller's credentials); the registry owns the writers, follows their connections and reaches
// them on the bus connection the service hands it.
#pragma once

#include "agent/bus_user.h"
#include "agent/status.h"

#include <systemd/sd-bus.h>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hvvss {

struct WriterInfo {
  std::string name;
  std::string owner;   // the unique bus name of the connection that registered it
  std::string object;  // where it implements io.github.hvvss.Writer1
  bool required = true;
  std::optional<std::chrono::microseconds> timeout;  // per call; nullopt: what the budget leaves
};

// The connection it is handed (BusUser) is the one writers are reached on; every writer
// registered on an earlier connection is dropped.
class WriterRegistry : public BusUser {
 public:
  // Errors: Code::Exists (the name is taken), Code::InvalidArgument, Code::LimitExceeded.
  virtual Status add(const WriterInfo& writer) = 0;
  // `caller` is the caller's unique bus name; `privileged` callers may remove anyone's writer.
  // Errors: Code::NotFound, Code::AccessDenied.
  virtual Status remove(std::string_view name, std::string_view caller, bool privileged) = 0;
  virtual std::vector<WriterInfo> list() const = 0;
};

}  // namespace hvvss
