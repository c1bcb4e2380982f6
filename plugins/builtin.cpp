#include "plugins/builtin.h"

#include "plugins/fsfreeze/plugin.h"
#include "plugins/units/plugin.h"
#include "plugins/writers/plugin.h"

namespace hvvss {

std::vector<std::unique_ptr<Plugin>> builtin_plugins() {
  std::vector<std::unique_ptr<Plugin>> plugins;
  plugins.push_back(writers::make_plugin());
  plugins.push_back(units::make_plugin());
  plugins.push_back(fsfreeze::make_plugin());
  return plugins;
}

}  // namespace hvvss
