#include "plugins/fsfreeze/plugin.h"

#include "agent/blocking.h"
#include "plugins/fsfreeze/fsfreeze.h"
#include "plugins/fsfreeze/settings.h"

namespace hvvss::fsfreeze {

namespace {

class FsFreezePlugin final : public Plugin {
 public:
  std::string_view name() const override { return "fsfreeze"; }
  void declare(ConfigSchema& schema) override { declare_settings(schema, &settings_.filters); }
  Status make(const PluginContext& context, std::vector<std::unique_ptr<Participant>>* participants) override {
    auto impl = std::make_unique<FsFreeze>(settings_, IntentRecord(context.runtime_dir));
    if (Status s = impl->validate(); !s) return s;
    std::unique_ptr<BlockingParticipant> participant;
    if (Status s = BlockingParticipant::create(context.loop, std::move(impl), Policy::Required, Layer::Filesystem,
                                               &participant);
        !s)
      return s;
    participants->push_back(std::move(participant));
    return {};
  }

 private:
  Settings settings_;
};

}  // namespace

std::unique_ptr<Plugin> make_plugin() { return std::make_unique<FsFreezePlugin>(); }

}  // namespace hvvss::fsfreeze
