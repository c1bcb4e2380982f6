#include "plugins/units/plugin.h"

#include "agent/bus.h"
#include "agent/config.h"
#include "plugins/units/participant.h"
#include "plugins/units/systemd.h"

#include <optional>

namespace hvvss::units {

namespace {

constexpr const char* kDefaultTarget = "hv-vss-quiesce.target";

class UnitsPlugin final : public Plugin {
 public:
  std::string_view name() const override { return "units"; }
  void declare(ConfigSchema& schema) override {
    schema.add(single_setting("Units", "Target", "--units-target",
                              "the systemd target that hook units are part of (empty: run no hooks)", "UNIT",
                              [this](const std::string& value) {
                                if (!value.empty() && !value.ends_with(".target"))
                                  return Status::errorf("\"{}\" is not a target unit (NAME.target)", value);
                                target_ = value;
                                return Status();
                              }));
  }
  Status make(const PluginContext& context, std::vector<std::unique_ptr<Participant>>* participants) override {
    if (!context.bus || target_.empty()) return {};
    systemd_.emplace(context.loop);
    context.bus->add_user(&*systemd_);
    participants->push_back(
        std::make_unique<Units>(context.loop, *systemd_, target_, context.runtime_dir + "/transaction.env"));
    return {};
  }

 private:
  std::string target_ = kDefaultTarget;
  std::optional<Systemd> systemd_;  // outlives the participant and the bus service, which both refer to it
};

}  // namespace

std::unique_ptr<Plugin> make_plugin() { return std::make_unique<UnitsPlugin>(); }

}  // namespace hvvss::units
