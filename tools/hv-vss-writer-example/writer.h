// The writer's side of the contract: io.github.hvvss.Writer1 served at one object. Each of Check,
// Freeze and Thaw does what the command line chose (ok: reply, after flushing on Freeze and
// Thaw; fail: an io.github.hvvss.Error.WriterFailed reply; hang: never reply), and Abort is
// logged. The bus keeps being served throughout, so a hung Freeze still hears its Abort.
#pragma once

#include "agent/status.h"

#include <systemd/sd-bus.h>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace hvvss::writer {

enum class Action { Ok, Fail, Hang };

struct Behaviour {
  Action check = Action::Ok;
  Action freeze = Action::Ok;
  Action thaw = Action::Ok;
};

struct Phase;  // a method of Writer1 that does what the command line chose (writer.cpp)

class WriterObject {
 public:
  // `flush_dirs`: on Freeze and Thaw, before replying, a file .hv-vss-writer-NAME is written and
  // fsync()ed in each, as an application flushes its data (and, on Thaw, proof that the
  // filesystem takes writes again).
  WriterObject(std::string name, Behaviour behaviour, std::vector<std::string> flush_dirs);
  ~WriterObject();
  WriterObject(const WriterObject&) = delete;
  WriterObject& operator=(const WriterObject&) = delete;

  // Serves io.github.hvvss.Writer1 at `path` on `bus` from now on.
  Status publish(sd_bus* bus, const std::string& path);

 private:
  static int on_phase(sd_bus_message* call, void* userdata, sd_bus_error* error);
  static int on_abort(sd_bus_message* call, void* userdata, sd_bus_error* error);
  void answer(sd_bus_message* call, const Phase& phase, uint64_t txn, Action action);
  Status flush(std::string_view method, uint64_t txn) const;

  struct MessageUnref {
    void operator()(sd_bus_message* m) const { sd_bus_message_unref(m); }
  };

  std::string name_;
  Behaviour behaviour_;
  std::vector<std::string> flush_dirs_;
  std::vector<std::unique_ptr<sd_bus_message, MessageUnref>> hung_;  // calls never to be answered
  sd_bus_slot* slot_ = nullptr;
};

}  // namespace hvvss::writer
