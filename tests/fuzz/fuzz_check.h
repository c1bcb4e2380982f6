// Invariant checks for the fuzz targets. A broken invariant prints what broke, where, and any
// detail the caller gives, then aborts: libFuzzer reports that as a crash and keeps the input.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>

// FUZZ_CHECK(condition) or FUZZ_CHECK(condition, detail); `detail` (a string) is only evaluated
// when the condition fails.
#define FUZZ_CHECK(condition, ...) \
  ((condition) ? void() : ::hvvss::fuzz::fail(#condition, __FILE__, __LINE__, std::string(__VA_ARGS__)))

namespace hvvss::fuzz {

[[noreturn]] inline void fail(const char* condition, const char* file, int line, const std::string& detail) {
  std::fprintf(stderr, "%s:%d: invariant broken: %s\n%s\n", file, line, condition, detail.c_str());
  std::abort();
}

}  // namespace hvvss::fuzz
