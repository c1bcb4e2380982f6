#include "plugins/writers/plugin.h"

#include "agent/bus.h"
#include "agent/config.h"
#include "plugins/writers/participant.h"
#include "plugins/writers/registry.h"

#include <pwd.h>
#include <spdlog/spdlog.h>
#include <charconv>

namespace hvvss::writers {

namespace {

// A user name or a numeric uid; nullopt if the system knows no such user.
std::optional<uid_t> resolve_user(const std::string& user) {
  uid_t uid = 0;
  auto [end, ec] = std::from_chars(user.data(), user.data() + user.size(), uid);
  if (ec == std::errc() && end == user.data() + user.size()) return uid;
  passwd pw{};
  passwd* found = nullptr;
  std::vector<char> buffer(16384);
  if (getpwnam_r(user.c_str(), &pw, buffer.data(), buffer.size(), &found) != 0 || !found) return std::nullopt;
  return found->pw_uid;
}

class WritersPlugin final : public Plugin {
 public:
  std::string_view name() const override { return "writers"; }
  void declare(ConfigSchema& schema) override {
    schema.add(list_setting("Writers", "AllowUsers", "--writers-allow-users",
                            "users (names or uids) who may register writers over D-Bus, besides root", "USER",
                            &allow_users_));
  }
  Status make(const PluginContext& context, std::vector<std::unique_ptr<Participant>>* participants) override {
    if (!context.bus) return {};
    std::vector<uid_t> uids;
    for (const std::string& user : allow_users_) {
      if (std::optional<uid_t> uid = resolve_user(user))
        uids.push_back(*uid);
      else
        spdlog::warn("[Writers] AllowUsers: no user \"{}\" on this system: ignored", user);
    }
    context.bus->set_writers(&registry_, std::move(uids));
    participants->push_back(std::make_unique<Writers>(context.loop, registry_));
    return {};
  }

 private:
  std::vector<std::string> allow_users_;
  Registry registry_;  // outlives the participant and the bus service, which both refer to it
};

}  // namespace

std::unique_ptr<Plugin> make_plugin() { return std::make_unique<WritersPlugin>(); }

}  // namespace hvvss::writers
