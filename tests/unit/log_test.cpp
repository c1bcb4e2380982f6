#include "agent/log.h"

#include <gtest/gtest.h>

namespace hvvss {
namespace {

TEST(LogTag, FormatsAndParsesBackIntoJournalFields) {
  std::string line = fmt::format("{} replied HV_S_OK", TxnTag{7, "FREEZE", "frozen"});
  EXPECT_EQ(line, "[txn=7 op=FREEZE phase=frozen] replied HV_S_OK");
  auto tag = parse_tag(line);
  ASSERT_TRUE(tag);
  EXPECT_EQ(tag->txn, "7");
  EXPECT_EQ(tag->op, "FREEZE");
  EXPECT_EQ(tag->phase, "frozen");
  EXPECT_EQ(tag->rest, "replied HV_S_OK");
}

TEST(LogTag, LinesWithoutATagHaveNoFields) {
  EXPECT_FALSE(parse_tag("registered on /dev/vmbus/hv_vss"));
  EXPECT_FALSE(parse_tag("[txn=1 op=THAW"));
  EXPECT_FALSE(parse_tag("[txn=1 colour=red] x"));
}

TEST(LogLevel, AcceptsSpdlogAndSyslogNames) {
  EXPECT_EQ(logging::parse_level("debug"), spdlog::level::debug);
  EXPECT_EQ(logging::parse_level("warning"), spdlog::level::warn);
  EXPECT_EQ(logging::parse_level("error"), spdlog::level::err);
  EXPECT_FALSE(logging::parse_level("loud"));
}

}  // namespace
}  // namespace hvvss
