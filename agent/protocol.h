// The hv_vss_msg wire format shared with the kernel's hv_utils VSS driver.
// A frame is 12 packed bytes: an operation byte (requests) or an int32 HRESULT (replies) at
// offset 0, and a 4-byte feature/flags word at offset 8. Requests are decoded with validation;
// replies are always built from a zeroed frame (PROTOCOL.md §1).
#pragma once

#include "agent/status.h"

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace hvvss {

enum class Op : uint8_t {
  Create = 0,
  Delete = 1,
  HotBackup = 2,
  GetDmInfo = 3,
  BuComplete = 4,
  Freeze = 5,
  Thaw = 6,
  AutoRecover = 7,
  Register = 128,
  Register1 = 129,
};

// HRESULTs the host understands (include/uapi/linux/hyperv.h).
enum class HvStatus : uint32_t {
  Ok = 0x00000000,
  Fail = 0x80004005,
  NotSupported = 0x80070032,
  InvalidArg = 0x80070057,
};

inline constexpr std::size_t kFrameSize = 12;
inline constexpr std::size_t kVersionReplySize = 4;
inline constexpr uint32_t kKernelVersion = 129;
inline constexpr uint32_t kNoAutoRecovery = 0x00000005;  // VSS_HBU_NO_AUTO_RECOVERY

#pragma pack(push, 1)
struct WireFrame {
  union {
    struct {
      uint8_t operation;
      uint8_t reserved[7];
    } hdr;
    int32_t error;
  } head;
  uint32_t flags;
};
#pragma pack(pop)
static_assert(sizeof(WireFrame) == kFrameSize, "hv_vss_msg must be 12 bytes");

using Frame = std::array<std::byte, kFrameSize>;

std::string_view op_name(uint8_t op);
std::string_view status_name(HvStatus status);
std::string status_hex(uint32_t code);

// A decoded request from the kernel. `op` is the raw byte: unknown values are representable
// so that they can be logged and answered HV_E_FAIL.
struct Request {
  uint8_t op = 0;
};

// Validates the size of a frame read from the device and extracts the operation; the error
// says what is wrong with a malformed frame.
Status decode_request(std::span<const std::byte> bytes, Request* request);

// Builds a reply frame: zeroed, `error` = status, flags set for a successful HOT_BACKUP.
Frame encode_reply(uint8_t op, HvStatus status);

// Builds a request frame as the kernel does (zeroed, only `operation` set).
Frame encode_request(uint8_t op);

// Reads the status of a reply frame (the simulator's side of encode_reply).
uint32_t reply_status(const Frame& frame);
uint32_t reply_flags(const Frame& frame);

}  // namespace hvvss
