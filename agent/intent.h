// The intent record: a small file in the runtime directory (/run/hv-vss-agent/intent, tmpfs)
// that names what the agent is about to freeze. It is written before the first FIFREEZE and
// removed after the last FITHAW, so an agent that starts and finds it knows its predecessor
// died with filesystems frozen, and thaws them before it does anything else.
#pragma once

#include "agent/status.h"
#include "agent/unique_fd.h"

#include <filesystem>
#include <string>
#include <vector>

namespace hvvss {

class IntentRecord {
 public:
  // A record larger than this is not one the agent wrote.
  static constexpr size_t kMaxBytes = size_t{64} * 1024;

  explicit IntentRecord(std::filesystem::path dir) : dir_(std::move(dir)) {}

  // Replaces the record with `lines` atomically (write + rename).
  Status write(const std::vector<std::string>& lines) const;
  // The lines of the record; none when there is no record. A record that cannot be read (not a
  // regular file, too large, an I/O error) is an error, never "no record".
  Status read(std::vector<std::string>* lines) const;
  void clear() const;
  std::filesystem::path path() const { return dir_ / "intent"; }

 private:
  std::filesystem::path dir_;
};

// Makes one agent the owner of a runtime directory: an flock on `lock` that the kernel drops
// when the process dies, even by SIGKILL. Only the owner may act on the intent record, so a
// second agent can never "recover" (thaw) what a live first agent froze.
class RuntimeLock {
 public:
  // Takes the lock; the error names the holder.
  Status acquire(const std::filesystem::path& dir);

 private:
  UniqueFd fd_;
};

}  // namespace hvvss
