#include "agent/protocol.h"

#include <fmt/format.h>
#include <cstring>

namespace hvvss {

std::string_view op_name(uint8_t op) {
  switch (static_cast<Op>(op)) {
    case Op::Create: return "CREATE";
    case Op::Delete: return "DELETE";
    case Op::HotBackup: return "HOT_BACKUP";
    case Op::GetDmInfo: return "GET_DM_INFO";
    case Op::BuComplete: return "BU_COMPLETE";
    case Op::Freeze: return "FREEZE";
    case Op::Thaw: return "THAW";
    case Op::AutoRecover: return "AUTO_RECOVER";
    case Op::Register: return "REGISTER";
    case Op::Register1: return "REGISTER1";
  }
  return "UNKNOWN";
}

std::string_view status_name(HvStatus status) {
  switch (status) {
    case HvStatus::Ok: return "HV_S_OK";
    case HvStatus::Fail: return "HV_E_FAIL";
    case HvStatus::NotSupported: return "HV_ERROR_NOT_SUPPORTED";
    case HvStatus::InvalidArg: return "HV_INVALIDARG";
  }
  return "HV_UNKNOWN";
}

std::string status_hex(uint32_t code) { return fmt::format("0x{:08X}", code); }

Status decode_request(std::span<const std::byte> bytes, Request* request) {
  if (bytes.size() != kFrameSize) return Status::errorf("frame of {} bytes, expected {}", bytes.size(), kFrameSize);
  request->op = static_cast<uint8_t>(bytes[0]);
  return {};
}

namespace {
Frame to_bytes(const WireFrame& wire) {
  Frame frame{};
  std::memcpy(frame.data(), &wire, sizeof wire);
  return frame;
}
WireFrame from_bytes(const Frame& frame) {
  WireFrame wire{};
  std::memcpy(&wire, frame.data(), sizeof wire);
  return wire;
}
}  // namespace

Frame encode_reply(uint8_t op, HvStatus status) {
  WireFrame wire{};
  wire.head.error = static_cast<int32_t>(status);
  if (op == static_cast<uint8_t>(Op::HotBackup) && status == HvStatus::Ok) wire.flags = kNoAutoRecovery;
  return to_bytes(wire);
}

Frame encode_request(uint8_t op) {
  WireFrame wire{};
  wire.head.hdr.operation = op;
  return to_bytes(wire);
}

uint32_t reply_status(const Frame& frame) { return static_cast<uint32_t>(from_bytes(frame).head.error); }
uint32_t reply_flags(const Frame& frame) { return from_bytes(frame).flags; }

}  // namespace hvvss
