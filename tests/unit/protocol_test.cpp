#include "agent/protocol.h"

#include <gtest/gtest.h>

namespace hvvss {
namespace {

TEST(Protocol, RequestFrameCarriesOnlyTheOperation) {
  Frame frame = encode_request(static_cast<uint8_t>(Op::Freeze));
  EXPECT_EQ(frame[0], std::byte{5});
  for (size_t i = 1; i < frame.size(); ++i) EXPECT_EQ(frame[i], std::byte{0}) << "byte " << i;
}

TEST(Protocol, DecodeRoundTripsEveryOperationByte) {
  for (int op = 0; op < 256; ++op) {
    Request request;
    Status decoded = decode_request(encode_request(static_cast<uint8_t>(op)), &request);
    ASSERT_TRUE(decoded) << decoded.message();
    EXPECT_EQ(request.op, op);
  }
}

TEST(Protocol, DecodeRejectsShortAndLongFrames) {
  for (size_t size : {0u, 1u, 4u, 11u, 13u, 64u}) {
    std::vector<std::byte> bytes(size, std::byte{5});
    Request request;
    Status decoded = decode_request(bytes, &request);
    EXPECT_FALSE(decoded) << size;
    EXPECT_NE(decoded.message().find(std::to_string(size) + " bytes"), std::string::npos) << decoded.message();
  }
}

TEST(Protocol, ReplyPutsTheHresultLittleEndianAtOffsetZero) {
  Frame frame = encode_reply(static_cast<uint8_t>(Op::Freeze), HvStatus::Fail);
  EXPECT_EQ(frame[0], std::byte{0x05});
  EXPECT_EQ(frame[1], std::byte{0x40});
  EXPECT_EQ(frame[2], std::byte{0x00});
  EXPECT_EQ(frame[3], std::byte{0x80});
  EXPECT_EQ(reply_status(frame), 0x80004005u);
  EXPECT_EQ(reply_flags(frame), 0u);
}

TEST(Protocol, SuccessfulHotBackupReplyAnnouncesNoAutoRecovery) {
  Frame frame = encode_reply(static_cast<uint8_t>(Op::HotBackup), HvStatus::Ok);
  EXPECT_EQ(reply_status(frame), 0u);
  EXPECT_EQ(reply_flags(frame), kNoAutoRecovery);
  EXPECT_EQ(reply_flags(encode_reply(static_cast<uint8_t>(Op::HotBackup), HvStatus::Fail)), 0u);
}

TEST(Protocol, NamesOperationsAndStatuses) {
  EXPECT_EQ(op_name(2), "HOT_BACKUP");
  EXPECT_EQ(op_name(129), "REGISTER1");
  EXPECT_EQ(op_name(42), "UNKNOWN");
  EXPECT_EQ(status_name(HvStatus::Fail), "HV_E_FAIL");
  EXPECT_EQ(status_hex(0x80004005u), "0x80004005");
}

}  // namespace
}  // namespace hvvss
