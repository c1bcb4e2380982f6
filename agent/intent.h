// The intent record: one small file per filesystem the agent is about to freeze, in the runtime
// directory (/run/hv-vss-agent/intent/MAJOR:MINOR, tmpfs), holding its mount point. An entry is
// created before that filesystem's FIFREEZE (no entry, no freeze) and removed once it is thawed,
// or at once if it turned out to be frozen by someone else. Removing is an unlink, which needs no
// space, so a full runtime directory can never leave a foreign freeze named in the record. An agent
// that starts and finds entries knows its predecessor died with them frozen, and thaws them
// before it does anything else.
#pragma once

#include "agent/status.h"
#include "agent/unique_fd.h"

#include <filesystem>
#include <string>
#include <vector>

namespace hvvss {

class IntentRecord {
 public:
  // More entries than this, or a larger entry, are not a record this agent wrote.
  static constexpr size_t kMaxEntries = 4096;
  static constexpr size_t kMaxEntryBytes = 4096;

  struct Entry {
    std::string dev;          // "major:minor", the superblock
    std::string mount_point;  // where it was frozen through
  };

  // `runtime_dir` holds the record in its subdirectory `intent`.
  explicit IntentRecord(const std::filesystem::path& runtime_dir) : dir_(runtime_dir / "intent") {}

  // Records that `entry` is about to be frozen; durable (in /run) before it returns.
  Status add(const Entry& entry) const;
  // Forgets an entry (it is thawed, or it was never ours).
  void remove(const std::string& dev) const;
  // Every entry; none when there is no record. An entry that cannot be read (not a regular file,
  // too large, too many of them, an I/O error) is an error, never "no record".
  Status read(std::vector<Entry>* entries) const;
  const std::filesystem::path& dir() const { return dir_; }

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
