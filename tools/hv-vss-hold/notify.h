// What systemd is told about a Type=notify hook (NotifyAccess=main is enough: only hv-vss-hold
// itself talks): READY=1 with a STATUS= line once the lock is held, so that the unit's start job
// (and with it hv-vss-quiesce.target) completes only then, and STOPPING=1 when the unlock begins.
// Run by hand (no $NOTIFY_SOCKET), nothing is sent.
#pragma once

#include "agent/status.h"

#include <string_view>

namespace hvvss::hold {

class Notifier {
 public:
  // Fails if the message could not be sent: systemd would never learn that the lock is held.
  Status ready(std::string_view status);
  // Best effort: a failure is only logged, the unlock goes ahead.
  void stopping(std::string_view status);
};

}  // namespace hvvss::hold
