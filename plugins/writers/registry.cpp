#include "plugins/writers/registry.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <algorithm>
#include <cstring>

namespace hvvss::writers {

namespace {
constexpr size_t kMaxNameLength = 64;

bool valid_name(std::string_view name) {
  return !name.empty() && name.size() <= kMaxNameLength && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           std::strchr("_-.@:", c) != nullptr;
  });
}
}  // namespace

struct Registry::Entry {
  Registry* registry;
  Writer writer;
  sd_bus_slot* match = nullptr;
  sd_bus_slot* check = nullptr;
  ~Entry() {
    sd_bus_slot_unref(match);
    sd_bus_slot_unref(check);
  }
};

Registry::Registry() = default;
Registry::~Registry() = default;

std::vector<Writer> Registry::writers() const {
  std::vector<Writer> out;
  for (const auto& e : entries_) out.push_back(e->writer);
  return out;
}

std::vector<WriterInfo> Registry::list() const {
  std::vector<WriterInfo> out;
  for (const auto& e : entries_) out.push_back(e->writer.info);
  return out;
}

void Registry::connected(sd_bus* bus) {
  while (!entries_.empty()) {
    spdlog::info("writers: {} dropped: the bus connection it registered on is gone",
                 entries_.front()->writer.info.name);
    erase(entries_.front().get(), false);
  }
  bus_ = bus;
}

Status Registry::add(const WriterInfo& info) {
  if (!bus_) return Status::error("not connected to the bus");
  if (!valid_name(info.name))
    return Status::refusal(
        Status::Code::InvalidArgument,
        fmt::format("invalid writer name \"{}\": 1 to {} of A-Z a-z 0-9 _ - . @ :", info.name, kMaxNameLength));
  if (std::any_of(entries_.begin(), entries_.end(), [&](const auto& e) { return e->writer.info.name == info.name; }))
    return Status::refusal(Status::Code::Exists, fmt::format("a writer named \"{}\" is already registered", info.name));
  if (entries_.size() >= kMaxWriters)
    return Status::refusal(Status::Code::LimitExceeded, fmt::format("at most {} writers may register", kMaxWriters));
  auto entry = std::make_unique<Entry>(Entry{this, Writer{next_id_++, info}});
  std::string match = fmt::format(
      "type='signal',sender='org.freedesktop.DBus',path='/org/freedesktop/DBus',interface='org.freedesktop.DBus',"
      "member='NameOwnerChanged',arg0='{}'",
      info.owner);
  if (int r = sd_bus_add_match_async(bus_, &entry->match, match.c_str(), &Registry::on_owner_changed,
                                     &Registry::on_match_installed, entry.get());
      r < 0)
    return Status::from_errno(-r, fmt::format("cannot follow {}", info.owner));
  entries_.push_back(std::move(entry));
  return {};
}

Status Registry::remove(std::string_view name, std::string_view caller, bool privileged) {
  auto it = std::find_if(entries_.begin(), entries_.end(), [&](const auto& e) { return e->writer.info.name == name; });
  if (it == entries_.end()) return Status::refusal(Status::Code::NotFound, fmt::format("no writer named \"{}\"", name));
  if (!privileged && (*it)->writer.info.owner != caller)
    return Status::refusal(Status::Code::AccessDenied,
                           fmt::format("writer \"{}\" belongs to {}: only its owner or root may remove it", name,
                                       (*it)->writer.info.owner));
  erase(it->get(), true);
  return {};
}

// The match is in place: a departure from now on is seen. Did the owner leave before?
int Registry::on_match_installed(sd_bus_message* m, void* userdata, sd_bus_error*) {
  auto* entry = static_cast<Entry*>(userdata);
  Registry* self = entry->registry;
  if (const sd_bus_error* e = sd_bus_message_get_error(m)) {
    spdlog::error("writers: cannot follow {}: {}; dropping writer {}", entry->writer.info.owner, e->message,
                  entry->writer.info.name);
    self->erase(entry, true);
    return 0;
  }
  int r = sd_bus_call_method_async(self->bus_, &entry->check, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                   "org.freedesktop.DBus", "GetNameOwner", &Registry::on_owner_checked, entry, "s",
                                   entry->writer.info.owner.c_str());
  if (r < 0) spdlog::error("writers: cannot check {}: {}", entry->writer.info.owner, std::strerror(-r));
  return 0;
}

int Registry::on_owner_checked(sd_bus_message* m, void* userdata, sd_bus_error*) {
  auto* entry = static_cast<Entry*>(userdata);
  entry->check = sd_bus_slot_unref(entry->check);
  if (sd_bus_message_is_method_error(m, nullptr)) {
    spdlog::info("writers: {} dropped: {} left the bus as it registered", entry->writer.info.name,
                 entry->writer.info.owner);
    entry->registry->erase(entry, false);
  }
  return 0;
}

int Registry::on_owner_changed(sd_bus_message* m, void* userdata, sd_bus_error*) {
  auto* entry = static_cast<Entry*>(userdata);
  const char* name = nullptr;
  const char* old_owner = nullptr;
  const char* new_owner = nullptr;
  if (sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner) < 0 || (new_owner && *new_owner)) return 0;
  spdlog::info("writers: {} dropped: {} left the bus", entry->writer.info.name, entry->writer.info.owner);
  entry->registry->erase(entry, false);
  return 0;
}

void Registry::erase(const Entry* entry, bool connected) {
  auto it = std::find_if(entries_.begin(), entries_.end(), [&](const auto& e) { return e.get() == entry; });
  if (it == entries_.end()) return;
  std::unique_ptr<Entry> gone = std::move(*it);
  entries_.erase(it);
  if (departure_) departure_(gone->writer, connected);
}

}  // namespace hvvss::writers
