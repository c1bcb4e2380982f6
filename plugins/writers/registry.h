// The writers registered over D-Bus: their names, owners and objects. Each writer is followed on
// its owner's connection (a match on NameOwnerChanged, then a check that the owner still exists,
// both asynchronous, like sd_bus_track but without its blocking GetNameOwner call), so that a
// writer whose application exits or drops off the bus is unregistered at once. The writers
// participant hears of every departure, so it never calls a writer that has gone.
#pragma once

#include "agent/writer_registry.h"

#include <systemd/sd-bus.h>
#include <cstddef>
#include <functional>
#include <memory>
#include <vector>

namespace hvvss::writers {

inline constexpr size_t kMaxWriters = 64;

struct Writer {
  uint64_t id = 0;  // never reused, so a call's reply can tell whether its writer is still there
  WriterInfo info;
};

class Registry final : public WriterRegistry {
 public:
  // Told of a writer that left; `connected` is true when it unregistered (or root removed it)
  // and can still be called, false when its connection is gone.
  using Departure = std::function<void(const Writer& writer, bool connected)>;

  Registry();
  ~Registry() override;
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  void on_departure(Departure departure) { departure_ = std::move(departure); }
  // The connection writers are reached on; nullptr when there is none.
  sd_bus* bus() const { return bus_; }
  // In registration order.
  std::vector<Writer> writers() const;

  void connected(sd_bus* bus) override;
  Status add(const WriterInfo& writer) override;
  Status remove(std::string_view name, std::string_view caller, bool privileged) override;
  std::vector<WriterInfo> list() const override;

 private:
  struct Entry;
  static int on_owner_changed(sd_bus_message* m, void* userdata, sd_bus_error* error);
  static int on_match_installed(sd_bus_message* m, void* userdata, sd_bus_error* error);
  static int on_owner_checked(sd_bus_message* m, void* userdata, sd_bus_error* error);
  void erase(const Entry* entry, bool connected);

  sd_bus* bus_ = nullptr;
  uint64_t next_id_ = 1;
  std::vector<std::unique_ptr<Entry>> entries_;
  Departure departure_;
};

}  // namespace hvvss::writers
