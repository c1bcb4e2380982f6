// Fuzzes the frame decoder with whatever a read from the device may return. decode_request must
// accept exactly the 12-byte frames, take the operation from byte 0 and read nothing past the
// input (ASan watches); the request and reply frames built for the decoded operation must read
// back as what they were built from.
#include "agent/protocol.h"
#include "tests/fuzz/fuzz_check.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

namespace hvvss {
namespace {

bool zero(std::span<const std::byte> bytes) {
  return std::all_of(bytes.begin(), bytes.end(), [](std::byte b) { return b == std::byte{0}; });
}

void check_frames_for(uint8_t op) {
  Frame request_frame = encode_request(op);
  Request again;
  FUZZ_CHECK(decode_request(request_frame, &again).is_ok() && again.op == op);
  FUZZ_CHECK(zero(std::span(request_frame).subspan(1)));
  for (HvStatus status : {HvStatus::Ok, HvStatus::Fail, HvStatus::NotSupported, HvStatus::InvalidArg}) {
    Frame reply = encode_reply(op, status);
    FUZZ_CHECK(reply_status(reply) == static_cast<uint32_t>(status));
    bool successful_hot_backup = op == static_cast<uint8_t>(Op::HotBackup) && status == HvStatus::Ok;
    FUZZ_CHECK(reply_flags(reply) == (successful_hot_backup ? kNoAutoRecovery : 0));
    FUZZ_CHECK(zero(std::span(reply).subspan(4, 4)));  // the reserved bytes
    FUZZ_CHECK(status_name(status) != "HV_UNKNOWN");
  }
}

}  // namespace
}  // namespace hvvss

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace hvvss;
  // A buffer of exactly `size` bytes, so that ASan sees a read past the end of the frame.
  std::vector<std::byte> bytes(size);
  if (size > 0) std::memcpy(bytes.data(), data, size);
  Request request;
  Status decoded = decode_request(bytes, &request);
  if (size != kFrameSize) {
    FUZZ_CHECK(!decoded && decoded.message().find(std::to_string(size)) != std::string::npos, decoded.message());
    return 0;
  }
  FUZZ_CHECK(decoded.is_ok(), decoded.message());
  FUZZ_CHECK(request.op == data[0]);
  FUZZ_CHECK(!op_name(request.op).empty());
  check_frames_for(request.op);
  // Read as a reply (the simulator's side), any frame has a status and flags to print.
  Frame frame;
  std::memcpy(frame.data(), data, kFrameSize);
  FUZZ_CHECK(status_hex(reply_status(frame)).size() == 10);
  FUZZ_CHECK(!status_name(static_cast<HvStatus>(reply_status(frame))).empty());
  return 0;
}
