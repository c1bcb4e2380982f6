#include "tools/hv-vss-hold/notify.h"

#include "tools/hv-vss-hold/say.h"

#include <systemd/sd-daemon.h>
#include <cstring>

namespace hvvss::hold {

Status Notifier::ready(std::string_view status) {
  int r = sd_notifyf(0, "READY=1\nSTATUS=%.*s", static_cast<int>(status.size()), status.data());
  if (r < 0) return Status::from_errno(-r, "cannot tell systemd READY=1");
  if (r == 0)
    say("{} (no $NOTIFY_SOCKET to tell; stop with SIGTERM)", status);
  else
    say("told systemd READY=1: {}", status);
  return {};
}

void Notifier::stopping(std::string_view status) {
  int r = sd_notifyf(0, "STOPPING=1\nSTATUS=%.*s", static_cast<int>(status.size()), status.data());
  if (r < 0) say("cannot tell systemd STOPPING=1: {}", std::strerror(-r));
}

}  // namespace hvvss::hold
