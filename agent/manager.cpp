#include "agent/manager.h"

#include <spdlog/spdlog.h>

namespace hvvss {

namespace {
constexpr std::chrono::milliseconds kMinBackoff{100};
constexpr std::chrono::milliseconds kMaxBackoff{5000};
constexpr std::chrono::milliseconds kRegistrationTimeout{5000};  // for the version reply to REGISTER1

std::vector<Participant*> pointers(const std::vector<std::unique_ptr<Participant>>& participants) {
  std::vector<Participant*> out;
  out.reserve(participants.size());
  for (const auto& p : participants) out.push_back(p.get());
  return out;
}
}  // namespace

Manager::Manager(sd_event* loop, ManagerSettings settings, std::vector<std::unique_ptr<Participant>> participants,
                 BusService* bus)
    : loop_(loop),
      settings_(std::move(settings)),
      participants_(std::move(participants)),
      engine_(loop, pointers(participants_), settings_.engine),
      bus_(bus),
      notifier_(loop, Notifier::address_from_environment()),
      watchdog_(loop, &notifier_),
      reconnect_timer_(loop, [this] { register_channel(); }),
      registration_timer_(loop,
                          [this] {
                            registration_failed(Status::errorf("{}: no version reply within {} ms of REGISTER1",
                                                               settings_.device, kRegistrationTimeout.count()));
                          }),
      backoff_(kMinBackoff) {
  engine_.add_observer(&log_);
  engine_.add_observer(this);
}

Manager::~Manager() { sd_event_source_disable_unref(io_); }

Status Manager::start() {
  if (Status s = watchdog_.start(); !s) return s;
  if (Status s = device_.open(settings_.device); !s) return s;
  if (Status s = lock_.acquire(settings_.runtime_dir); !s) return s;
  // Filesystems first: they hold the whole system up; applications resume after them.
  for (Layer layer : {Layer::Application, Layer::Filesystem})
    for (const auto& p : participants_)
      if (p->layer() == layer) to_recover_.push_back(p.get());
  recover_next();
  return {};
}

// Runs each participant's recovery in turn, then registers: no host request is read before.
void Manager::recover_next() {
  if (to_recover_.empty()) {
    recovered_ = true;
    if (stopping_) return exit(0);
    // A test snapshot must wait for recovery too; it may not hold past the automatic thaw.
    if (bus_) bus_->start(&engine_, settings_.engine.auto_thaw - std::chrono::seconds(1));
    register_channel();
    return;
  }
  Participant* p = to_recover_.back();
  to_recover_.pop_back();
  p->recover([this, p](Outcome outcome) {
    if (!outcome.ok())
      spdlog::error("{}: a previous agent left it frozen; recovery incomplete: {}", p->name(), outcome.detail);
    else if (!outcome.detail.empty())
      spdlog::warn("{}: a previous agent left it frozen; recovered: {}", p->name(), outcome.detail);
    if (outcome.holds) engine_.adopt_frozen(p);
    recover_next();
  });
}

void Manager::register_channel() {
  Status s = device_.is_open() ? Status() : device_.open(settings_.device);
  if (s) s = device_.send_register();
  if (s) {
    if (int r = sd_event_add_io(loop_, &io_, device_.fd(), EPOLLIN, &Manager::on_io, this); r < 0)
      s = Status::from_errno(-r, fmt::format("cannot watch {}", settings_.device));
  }
  if (s) s = registration_timer_.arm(Clock::now() + kRegistrationTimeout);
  if (!s) return registration_failed(s);
  channel_ = Channel::Registering;
}

void Manager::on_version_reply(uint32_t revents) {
  bool done = false;
  if (revents & EPOLLIN) {
    if (Status s = device_.read_version(&done); !s) return registration_failed(s);
  }
  if (done) return on_registered();
  if (revents & (EPOLLHUP | EPOLLERR))
    registration_failed(
        Status::errorf("{}: the driver closed the channel during registration (POLLHUP)", settings_.device));
}

void Manager::registration_failed(const Status& why) {
  close_channel();
  if (!registered_once_) {
    spdlog::critical("{}", why.message());
    return exit(1);
  }
  spdlog::debug("reconnect failed: {}", why.message());
  schedule_reconnect();
}

void Manager::on_registered() {
  registration_timer_.disarm();
  channel_ = Channel::Registered;
  backoff_ = kMinBackoff;
  spdlog::info("registered on {} (kernel VSS version {})", settings_.device, device_.kernel_version());
  notify(fmt::format("{}STATUS=Registered on {}; idle", registered_once_ ? "" : "READY=1\n", settings_.device));
  registered_once_ = true;
}

void Manager::close_channel() {
  registration_timer_.disarm();
  sd_event_source_disable_unref(io_);
  io_ = nullptr;
  device_.close();
  channel_ = Channel::Closed;
}

int Manager::on_io(sd_event_source*, int, uint32_t revents, void* userdata) {
  auto* self = static_cast<Manager*>(userdata);
  if (self->channel_ == Channel::Registering) {
    self->on_version_reply(revents);
    return 0;
  }
  if (revents & EPOLLIN) {
    std::vector<std::byte> frame;
    if (Status s = self->device_.read(&frame); !s) {
      self->lose_channel(s.message());
      return 0;
    }
    if (!frame.empty()) {
      self->on_frame(frame);
      return 0;
    }
  }
  if (revents & (EPOLLHUP | EPOLLERR)) self->lose_channel("the driver closed the channel (POLLHUP)");
  return 0;
}

void Manager::on_frame(std::span<const std::byte> bytes) {
  Request request;
  if (Status s = decode_request(bytes, &request); !s) {
    // The kernel waits for a reply to whatever it queued: answer it, then start afresh, as the
    // channel is out of step with us.
    spdlog::error("bad frame from the kernel: {}; answering HV_E_FAIL", s.message());
    send_reply(bytes.empty() ? 0 : static_cast<uint8_t>(bytes[0]), HvStatus::Fail);
    lose_channel("bad frame");
    return;
  }
  engine_.handle(request.op, [this](uint8_t op, HvStatus status) { return send_reply(op, status); });
}

bool Manager::send_reply(uint8_t op, HvStatus status) {
  if (channel_ != Channel::Registered) return false;
  if (Status s = device_.write(encode_reply(op, status)); !s) {
    lose_channel(fmt::format("reply to {} not delivered: {}", op_name(op), s.message()));
    return false;
  }
  return true;
}

void Manager::lose_channel(std::string_view why) {
  if (channel_ != Channel::Registered) return;
  spdlog::warn("channel lost: {}; reconnecting", why);
  close_channel();
  if (Status s = post(loop_, [this] { engine_.abandon("channel to the host lost"); }); !s) {
    spdlog::critical("{}: thawing at once", s.message());
    engine_.abandon("channel to the host lost");
  }
  notify("STATUS=Channel lost; reconnecting");
  schedule_reconnect();
}

void Manager::schedule_reconnect() {
  if (stopping_) return;
  if (Status s = reconnect_timer_.arm(Clock::now() + backoff_); !s) {
    spdlog::critical("{}: cannot reconnect; exiting so that systemd restarts the agent", s.message());
    engine_.stop([this] { exit(1); });
    return;
  }
  backoff_ = std::min(backoff_ * 2, kMaxBackoff);
}

void Manager::stop() {
  if (stopping_) return;
  stopping_ = true;
  spdlog::info("stopping");
  reconnect_timer_.disarm();
  if (!recovered_) return;  // recover_next() exits once recovery is done
  // A registration under way is given up: no request can have come on that channel yet.
  if (channel_ == Channel::Registering) close_channel();
  engine_.stop([this] { exit(0); });
}

void Manager::exit(int code) {
  if (int r = sd_event_exit(loop_, code); r < 0) spdlog::critical("cannot leave the event loop: {}", std::strerror(-r));
}

void Manager::notify(const std::string& text) { notifier_.notify(text); }

void Manager::request_answered(const EventContext& at, HvStatus status, std::string_view, Clock::duration, bool) {
  if (at.origin == Origin::Local) return;
  notify(
      fmt::format("STATUS=Last request {} answered {}; {}", op_name(at.op), status_name(status), state_name(at.state)));
}

}  // namespace hvvss
