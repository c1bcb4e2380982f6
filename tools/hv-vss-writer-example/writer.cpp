#include "tools/hv-vss-writer-example/writer.h"

#include "agent/unique_fd.h"
#include "tools/hv-vss-writer-example/events.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>
#include <cerrno>
#include <cstring>

namespace hvvss::writer {

// A method that does what the command line chose, and the option that chose it.
struct Phase {
  std::string_view method;
  std::string_view option;
  Action Behaviour::*action;
};

namespace {

constexpr const char* kInterface = "io.github.hvvss.Writer1";
constexpr const char* kWriterFailed = "io.github.hvvss.Error.WriterFailed";

constexpr Phase kPhases[] = {
    {"Check", "--check", &Behaviour::check},
    {"Freeze", "--freeze", &Behaviour::freeze},
    {"Thaw", "--thaw", &Behaviour::thaw},
};

std::string_view action_name(Action action) {
  switch (action) {
    case Action::Ok: return "ok";
    case Action::Fail: return "fail";
    case Action::Hang: return "hang";
  }
  return "?";
}

}  // namespace

WriterObject::WriterObject(std::string name, Behaviour behaviour, std::vector<std::string> flush_dirs)
    : name_(std::move(name)), behaviour_(behaviour), flush_dirs_(std::move(flush_dirs)) {}

WriterObject::~WriterObject() { sd_bus_slot_unref(slot_); }

Status WriterObject::publish(sd_bus* bus, const std::string& path) {
  static const sd_bus_vtable kVtable[] = {
      SD_BUS_VTABLE_START(0),
      SD_BUS_METHOD_WITH_ARGS("Check", SD_BUS_ARGS("t", transaction), SD_BUS_NO_RESULT, &WriterObject::on_phase, 0),
      SD_BUS_METHOD_WITH_ARGS("Freeze", SD_BUS_ARGS("t", transaction), SD_BUS_NO_RESULT, &WriterObject::on_phase, 0),
      SD_BUS_METHOD_WITH_ARGS("Thaw", SD_BUS_ARGS("t", transaction), SD_BUS_NO_RESULT, &WriterObject::on_phase, 0),
      SD_BUS_METHOD_WITH_ARGS("Abort", SD_BUS_ARGS("t", transaction), SD_BUS_NO_RESULT, &WriterObject::on_abort, 0),
      SD_BUS_VTABLE_END};
  if (int r = sd_bus_add_object_vtable(bus, &slot_, path.c_str(), kInterface, kVtable, this); r < 0)
    return Status::from_errno(-r, fmt::format("cannot serve {} at {}", kInterface, path));
  return {};
}

int WriterObject::on_phase(sd_bus_message* call, void* userdata, sd_bus_error*) {
  uint64_t received = mono_usec();
  auto* self = static_cast<WriterObject*>(userdata);
  uint64_t txn = 0;
  if (int r = sd_bus_message_read(call, "t", &txn); r < 0) return r;  // sd-bus replies with the error
  std::string_view method = sd_bus_message_get_member(call);
  for (const Phase& phase : kPhases) {
    if (phase.method != method) continue;
    Action action = self->behaviour_.*phase.action;
    print_event("call", {{"method", method}, {"txn", txn}, {"mono_us", received}, {"action", action_name(action)}});
    self->answer(call, phase, txn, action);
  }
  return 1;
}

int WriterObject::on_abort(sd_bus_message* call, void*, sd_bus_error*) {
  uint64_t received = mono_usec();
  uint64_t txn = 0;
  if (int r = sd_bus_message_read(call, "t", &txn); r < 0) return r;
  print_event("abort", {{"txn", txn}, {"mono_us", received}});
  // A real application resumes here, as on Thaw. The agent awaits no reply; a caller that asked
  // for one gets it.
  return sd_bus_reply_method_return(call, nullptr);
}

void WriterObject::answer(sd_bus_message* call, const Phase& phase, uint64_t txn, Action action) {
  if (action == Action::Hang) {
    hung_.emplace_back(sd_bus_message_ref(call));
    return;
  }
  std::string failure;
  if (action == Action::Fail) {
    failure = fmt::format("{} failed (simulated by {} fail)", phase.method, phase.option);
  } else if (phase.method != "Check") {
    if (Status s = flush(phase.method, txn); !s) failure = fmt::format("{} failed: {}", phase.method, s.message());
  }
  // Taken before sending, so it never postdates the agent's receipt of the reply.
  uint64_t sent = mono_usec();
  int r = failure.empty() ? sd_bus_reply_method_return(call, nullptr)
                          : sd_bus_reply_method_errorf(call, kWriterFailed, "%s", failure.c_str());
  if (r < 0) {
    print_event("error", {{"message", fmt::format("cannot reply to {}: {}", phase.method, std::strerror(-r))}});
    return;
  }
  std::vector<Field> fields{{"method", phase.method}, {"txn", txn}, {"mono_us", sent}};
  if (!failure.empty()) fields.insert(fields.end(), {{"error", kWriterFailed}, {"message", failure}});
  print_event("replied", fields);
}

Status WriterObject::flush(std::string_view method, uint64_t txn) const {
  std::string text = fmt::format("{} {} txn={}\n", name_, method, txn);
  for (const auto& dir : flush_dirs_) {
    std::string path = fmt::format("{}/.hv-vss-writer-{}", dir, name_);
    UniqueFd fd(open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!fd || write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()) || fsync(fd.get()) != 0)
      return Status::from_errno(errno, "flushing " + path);
  }
  return {};
}

}  // namespace hvvss::writer
