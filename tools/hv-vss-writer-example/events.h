// What the example writer prints: one line per event on stdout, "event=NAME key=value ...", flushed
// at once, for people and for the tests that parse it. A value with a space, a quote or a
// backslash is quoted ("..." with \" and \\). Fatal errors also go to stderr as
// "hv-vss-writer-example: NAME: MESSAGE".
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace hvvss::writer {

struct Field {
  Field(std::string_view k, std::string_view v) : key(k), value(v) {}
  Field(std::string_view k, uint64_t v) : key(k), value(std::to_string(v)) {}
  std::string_view key;
  std::string value;
};

void print_event(std::string_view event, const std::vector<Field>& fields = {});

// "event=error message=..." on stdout and "hv-vss-writer-example: what: message" on stderr.
void print_fatal(std::string_view what, std::string_view message);

// CLOCK_MONOTONIC in µs: the clock of the agent's and the kernel's timestamps.
uint64_t mono_usec();

}  // namespace hvvss::writer
