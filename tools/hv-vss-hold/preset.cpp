#include "tools/hv-vss-hold/preset.h"

#include <fmt/format.h>
#include <cstdlib>

namespace hvvss::hold {

const std::vector<Preset>& presets() {
  // mariadb and mysql: batch mode stops at the first error (no --force); --unbuffered flushes each
  // result. postgresql: ON_ERROR_STOP makes psql exit at the first error; the backup label is
  // not kept (a snapshot of the whole data directory restores by crash recovery).
  static const std::vector<Preset> all{
      {"mariadb",
       "mariadb",
       {"--batch", "--skip-column-names", "--unbuffered"},
       {},
       "BACKUP STAGE START; BACKUP STAGE BLOCK_COMMIT",
       "BACKUP STAGE END",
       "SET SESSION lock_wait_timeout = {}"},
      {"mysql",
       "mysql",
       {"--batch", "--skip-column-names", "--unbuffered"},
       {},
       "FLUSH TABLES WITH READ LOCK",
       "UNLOCK TABLES",
       "SET SESSION lock_wait_timeout = {}"},
      {"postgresql",
       "psql",
       {"--no-psqlrc", "--quiet", "--no-align", "--tuples-only", "--no-password", "--set=ON_ERROR_STOP=1"},
       {"PGAPPNAME=hv-vss-hold"},
       "SELECT pg_backup_start('hv-vss-hold', true)",
       "SELECT lsn FROM pg_backup_stop(false)",
       {}},
  };
  return all;
}

Status make_plan(const Request& request, Plan* plan) {
  if (!request.preset) {
    if (!request.lock || !request.unlock || request.args.empty())
      return Status::refusal(Status::Code::InvalidArgument,
                             "give a preset (mariadb, mysql, postgresql), or --lock, --unlock and -- CLIENT [ARGS...]");
    *plan = Plan{request.args, {}, *request.lock, *request.unlock};
    if (request.client) plan->argv[0] = *request.client;
    return {};
  }
  for (const Preset& preset : presets()) {
    if (preset.name != *request.preset) continue;
    Plan p{{request.client.value_or(std::string(preset.client))}, {}, {}, {}};
    p.argv.insert(p.argv.end(), request.args.begin(), request.args.end());
    p.argv.insert(p.argv.end(), preset.flags.begin(), preset.flags.end());
    for (std::string_view entry : preset.env)
      if (!std::getenv(std::string(entry.substr(0, entry.find('='))).c_str())) p.env.emplace_back(entry);
    p.lock = request.lock.value_or(std::string(preset.lock));
    if (!preset.lock_wait_limit.empty()) {
      auto seconds = std::chrono::ceil<std::chrono::seconds>(request.timeout).count() + 1;
      p.lock = fmt::format("{}; {}", fmt::format(fmt::runtime(preset.lock_wait_limit), seconds), p.lock);
    }
    p.unlock = request.unlock.value_or(std::string(preset.unlock));
    *plan = std::move(p);
    return {};
  }
  return Status::refusal(Status::Code::InvalidArgument, "unknown preset " + *request.preset);
}

}  // namespace hvvss::hold
