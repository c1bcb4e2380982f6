#include "agent/config.h"

#include "agent/unique_fd.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <ini.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <stdexcept>

namespace hvvss {

namespace fs = std::filesystem;

Status parse_duration(std::string_view text, std::chrono::milliseconds* out) {
  auto invalid = [text] { return Status::errorf("invalid duration '{}' (use e.g. 15, 15s, 500ms, 2min)", text); };
  // Digits with at most one decimal point, read by hand: std::from_chars<double> would link libm
  // into the daemon for its rounding-mode fallback, a library it maps for nothing else.
  double value = 0, place = 1;
  size_t end = 0, digits = 0;
  bool point = false;
  for (; end < text.size(); ++end) {
    char c = text[end];
    if (c == '.' && !point) {
      point = true;
    } else if (c >= '0' && c <= '9') {
      ++digits;
      if (point)
        value += (c - '0') * (place /= 10);
      else
        value = value * 10 + (c - '0');
    } else {
      break;
    }
  }
  if (digits == 0) return invalid();
  std::string_view unit = text.substr(end);
  double scale = 0;
  if (unit.empty() || unit == "s" || unit == "sec")
    scale = 1000;
  else if (unit == "ms" || unit == "msec")
    scale = 1;
  else if (unit == "min")
    scale = 60000;
  else
    return invalid();
  if (!(value > 0) || value * scale > 86400000.0 * 365) return invalid();
  // Rounded to the nearest millisecond, halves up (not std::llround, the daemon's only use of libm,
  // which it would otherwise map for this alone).
  auto ms =
      std::chrono::floor<std::chrono::milliseconds>(std::chrono::duration<double, std::milli>(value * scale + 0.5));
  if (ms.count() <= 0) return invalid();
  *out = ms;
  return {};
}

Setting single_setting(std::string section, std::string key, std::string flag, std::string help,
                       std::string placeholder, std::function<Status(const std::string& value)> parse) {
  return {
      .section = std::move(section),
      .key = std::move(key),
      .flag = std::move(flag),
      .help = std::move(help),
      .placeholder = std::move(placeholder),
      .list = false,
      .apply = [parse = std::move(parse)](const std::vector<std::string>& values) { return parse(values.front()); }};
}

Setting duration_setting(std::string section, std::string key, std::string flag, std::string help,
                         std::chrono::milliseconds* target, const DurationRange& range) {
  return single_setting(std::move(section), std::move(key), std::move(flag), std::move(help), "DURATION",
                        [target, range](const std::string& value) {
                          std::chrono::milliseconds parsed{};
                          if (Status s = parse_duration(value, &parsed); !s) return s;
                          if (parsed < range.min || parsed > range.max)
                            return Status::errorf("'{}' is outside {} ({} to {})", value, range.why,
                                                  format_duration(range.min), format_duration(range.max));
                          *target = parsed;
                          return Status::ok();
                        });
}

std::string format_duration(std::chrono::milliseconds d) {
  if (d.count() % 60000 == 0) return fmt::format("{}min", d.count() / 60000);
  if (d.count() % 1000 == 0) return fmt::format("{}s", d.count() / 1000);
  return fmt::format("{}ms", d.count());
}

Setting path_setting(std::string section, std::string key, std::string flag, std::string help, std::string* target) {
  return single_setting(std::move(section), std::move(key), std::move(flag), std::move(help), "PATH",
                        [target](const std::string& value) {
                          if (value.empty()) return Status::error("value must not be empty");
                          *target = value;
                          return Status::ok();
                        });
}

Setting list_setting(std::string section, std::string key, std::string flag, std::string help, std::string placeholder,
                     std::vector<std::string>* target, ListRules rules) {
  return {.section = std::move(section),
          .key = std::move(key),
          .flag = std::move(flag),
          .help = std::move(help),
          .placeholder = std::move(placeholder),
          .list = true,
          .apply = [target, rules](const std::vector<std::string>& values) {
            for (const auto& item : values)
              if (rules.absolute_paths && !item.starts_with('/'))
                return Status::errorf("'{}' is not an absolute path", item);
            if (values.empty() || rules.replace) target->clear();
            target->insert(target->end(), values.begin(), values.end());
            return Status::ok();
          }};
}

void ConfigSchema::add(Setting setting) {
  for (const Setting& other : settings_) {
    if (other.section == setting.section && other.key == setting.key)
      throw std::logic_error(fmt::format("[{}] {}= declared twice", setting.section, setting.key));
    if (other.flag == setting.flag) throw std::logic_error(fmt::format("{} declared twice", setting.flag));
  }
  settings_.push_back(std::move(setting));
}

namespace {

std::vector<std::string> split_words(std::string_view text) {
  std::vector<std::string> words;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
    size_t start = i;
    while (i < text.size() && !std::isspace(static_cast<unsigned char>(text[i]))) ++i;
    if (i > start) words.emplace_back(text.substr(start, i - start));
  }
  return words;
}

Status apply_assignment(const std::vector<Setting>& settings, std::string_view section, std::string_view key,
                        std::string_view value) {
  auto it = std::find_if(settings.begin(), settings.end(),
                         [&](const Setting& s) { return s.section == section && s.key == key; });
  if (it == settings.end()) return Status::errorf("unknown key '{}' in section [{}]", key, section);
  if (!it->list && value.empty()) return Status::errorf("{}= needs a value", key);
  return it->apply(it->list ? split_words(value) : std::vector<std::string>{std::string(value)})
      .prefixed(fmt::format("{}=", key));
}

// One file going through inih, which is fed from memory a line at a time. Counting the lines
// here lets an error found while applying a value name its own line, and lets a line too long for
// inih's buffer be refused (inih would cut it in two and read the rest as a line of its own).
struct Parse {
  Parse(const std::vector<Setting>& settings, std::string_view text) : settings(&settings), rest(text) {}

  const std::vector<Setting>* settings;
  std::string_view rest;  // the text not yet handed to inih
  int line = 0;           // the line inih is on
  int error_line = 0;     // of the first error found here; 0 for none
  std::string error;

  void fail(const std::string& message) {
    if (error_line != 0) return;
    error_line = line;
    error = message;
  }

  // inih's ini_reader: the next line, with its '\n', into `buffer` of `size` bytes.
  static char* read_line(char* buffer, int size, void* stream) {
    auto* parse = static_cast<Parse*>(stream);
    if (parse->rest.empty()) return nullptr;
    size_t newline = parse->rest.find('\n');
    size_t length = newline == std::string_view::npos ? parse->rest.size() : newline + 1;
    ++parse->line;
    if (length >= static_cast<size_t>(size)) {
      parse->fail(fmt::format("line longer than {} characters", size - 2));
      return nullptr;
    }
    std::memcpy(buffer, parse->rest.data(), length);
    buffer[length] = '\0';
    parse->rest.remove_prefix(length);
    return buffer;
  }

  static int on_key(void* user, const char* section, const char* key, const char* value) {
    auto* parse = static_cast<Parse*>(user);
    Status status = apply_assignment(*parse->settings, section, key, value);
    if (!status) parse->fail(status.message());
    return status ? 1 : 0;
  }
};

// /dev/null reads as an empty configuration: the way to mask a file, as in systemd.
bool is_dev_null(const struct stat& st) { return S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3); }

Status too_large(const std::string& path) {
  return Status::errorf("{}: larger than {} MiB", path, kMaxConfigFileBytes >> 20);
}

Status check_readable(const std::string& path, const struct stat& st) {
  if (!S_ISREG(st.st_mode)) return Status::errorf("{}: not a regular file", path);
  if (static_cast<uintmax_t>(st.st_size) > kMaxConfigFileBytes) return too_large(path);
  return {};
}

// The contents of a configuration file, refused unread unless check_readable() accepts it.
Status read_config_text(const std::string& path, std::string* text) {
  text->clear();
  struct stat st {};
  // stat() first so that a device node is never opened, as that may act (a watchdog arms, a tape
  // rewinds). The check that counts is the fstat() of the descriptor we read.
  if (::stat(path.c_str(), &st) != 0) return Status::from_errno(errno, path);
  if (is_dev_null(st)) return {};
  if (Status status = check_readable(path, st); !status) return status;
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
  if (!fd) return Status::from_errno(errno, path);
  if (::fstat(fd.get(), &st) != 0) return Status::from_errno(errno, path);
  if (Status status = check_readable(path, st); !status) return status;
  text->reserve(static_cast<size_t>(st.st_size));
  std::array<char, 8192> chunk{};
  for (;;) {
    ssize_t n = ::read(fd.get(), chunk.data(), chunk.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::from_errno(errno, path);
    if (n == 0) break;
    text->append(chunk.data(), static_cast<size_t>(n));
    if (text->size() > kMaxConfigFileBytes) return too_large(path);  // it grew since fstat()
  }
  return {};
}

// The drop-ins in `dir` (*.conf) in lexical order; none when `dir` does not exist.
Status list_dropins(const fs::path& dir, std::vector<fs::path>* dropins) {
  std::error_code ec;
  fs::directory_iterator it(dir, ec);
  if (ec == std::errc::no_such_file_or_directory) return {};
  for (; !ec && it != fs::directory_iterator(); it.increment(ec))
    if (it->path().extension() == ".conf") dropins->push_back(it->path());
  if (ec) return Status::from_errno(ec.value(), dir.string());
  std::sort(dropins->begin(), dropins->end());
  return {};
}

}  // namespace

Status ConfigSchema::load_file(const std::string& path) const {
  std::string text;
  if (Status status = read_config_text(path, &text); !status) return status;
  return load_text(text, path);
}

Status ConfigSchema::load_text(std::string_view text, std::string_view name) const {
  if (text.find('\0') != std::string_view::npos) return Status::errorf("{}: contains a NUL byte", name);
  Parse parse(settings_, text);
  int line = ini_parse_stream(&Parse::read_line, &parse, &Parse::on_key, &parse);
  if (line < 0) return Status::errorf("{}: out of memory", name);
  if (line > 0 && (parse.error_line == 0 || line < parse.error_line))
    return Status::errorf("{}:{}: syntax error", name, line);
  if (parse.error_line > 0) return Status::errorf("{}:{}: {}", name, parse.error_line, parse.error);
  return {};
}

Status ConfigSchema::load(const std::string& path, bool required) const {
  Status status = load_file(path);
  if (!status && (required || status.error_number() != ENOENT)) return status;
  std::vector<fs::path> dropins;
  if (Status listed = list_dropins(path + ".d", &dropins); !listed) return listed;
  for (const auto& dropin : dropins)
    if (Status loaded = load_file(dropin.string()); !loaded) return loaded;
  return {};
}

namespace {

// The command line of the daemon: --help, --version, --config FILE and one option per setting,
// each as "--flag VALUE" or "--flag=VALUE"; a list option takes every following argument up to
// the next option. Parsed by hand rather than with CLI11, whose iostreams and locale machinery
// would stay resident in the idling daemon (docs/PERFORMANCE.md, idle cost).
class CommandLine {
 public:
  CommandLine(const ConfigSchema& schema, const CommandLineInfo& info)
      : schema_(schema), info_(info), config_path_(info.default_config_path), values_(schema.settings().size()) {}

  // std::nullopt when the program goes on, else its exit code (0 after --help or --version,
  // 2 after a usage error, which goes to stderr).
  std::optional<int> parse(int argc, char** argv) {
    std::vector<std::string>* list = nullptr;  // where the arguments that are not options go
    for (int i = 1; i < argc; ++i) {
      std::string_view arg = argv[i];
      if (arg == "-h" || arg == "--help") return print(help());
      if (arg == "--version") return print(info_.version + "\n");
      if (!arg.starts_with("--") || arg == "--") {
        if (!list) return usage_error(fmt::format("unexpected argument '{}'", arg));
        list->emplace_back(arg);
        continue;
      }
      size_t equals = arg.find('=');
      std::string_view flag = arg.substr(0, equals);
      std::string value;
      if (equals != std::string_view::npos)
        value = arg.substr(equals + 1);
      else if (i + 1 < argc)
        value = argv[++i];
      else
        return usage_error(fmt::format("{} needs a value", flag));
      list = nullptr;
      if (flag == "--config") {
        config_path_ = value;
        config_given_ = true;
        continue;
      }
      auto index = find(flag);
      if (!index) return usage_error(fmt::format("unknown option {}", flag));
      auto& values = values_[*index];
      if (values && !schema_.settings()[*index].list) return usage_error(fmt::format("{} given twice", flag));
      if (!values) values.emplace();
      values->push_back(std::move(value));
      if (schema_.settings()[*index].list) list = &*values;
    }
    return std::nullopt;
  }

  const std::string& config_path() const { return config_path_; }
  bool config_given() const { return config_given_; }
  // What the command line gives the setting at `index`; std::nullopt when it does not name it.
  const std::optional<std::vector<std::string>>& values(size_t index) const { return values_[index]; }

 private:
  std::optional<size_t> find(std::string_view flag) const {
    const auto& settings = schema_.settings();
    for (size_t i = 0; i < settings.size(); ++i)
      if (settings[i].flag == flag) return i;
    return std::nullopt;
  }

  std::string help() const {
    std::string text = fmt::format("Usage: {} [OPTIONS]\n\n{}\n\nOptions:\n", info_.program, info_.description);
    auto option = [&text](std::string_view name, std::string_view what) {
      text += fmt::format("  {:<30} {}\n", name, what);
    };
    option("-h, --help", "Print this help message and exit");
    option("--version", "Print the version and exit");
    option("--config FILE", fmt::format("Configuration file (drop-ins are read from FILE.d/*.conf) [default: {}]",
                                        info_.default_config_path));
    for (const Setting& s : schema_.settings())
      option(fmt::format("{} {}{}", s.flag, s.placeholder, s.list ? " ..." : ""),
             fmt::format("{} (config: [{}] {}=)", s.help, s.section, s.key));
    if (!info_.footer.empty()) text += "\n" + info_.footer + "\n";
    return text;
  }

  static int print(const std::string& text) {
    std::fputs(text.c_str(), stdout);
    return 0;
  }

  int usage_error(std::string_view message) const {
    fmt::print(stderr, "{}: {}\nRun with --help for more information.\n", info_.program, message);
    return 2;
  }

  const ConfigSchema& schema_;
  const CommandLineInfo& info_;
  std::string config_path_;
  bool config_given_ = false;
  std::vector<std::optional<std::vector<std::string>>> values_;
};

}  // namespace

std::optional<int> configure(const ConfigSchema& schema, int argc, char** argv, const CommandLineInfo& info) {
  CommandLine command_line(schema, info);
  if (auto code = command_line.parse(argc, argv)) return code;
  if (Status status = schema.load(command_line.config_path(), command_line.config_given()); !status) {
    fmt::print(stderr, "{}: configuration error: {}\n", info.program, status.message());
    return 2;
  }
  const auto& settings = schema.settings();
  for (size_t i = 0; i < settings.size(); ++i) {
    const auto& values = command_line.values(i);
    if (!values) continue;
    // The command line replaces the files' list.
    Status status = settings[i].list ? settings[i].apply({}) : Status::ok();
    if (status) status = settings[i].apply(*values);
    if (!status) {
      fmt::print(stderr, "{}: {}: {}\n", info.program, settings[i].flag, status.message());
      return 2;
    }
  }
  return std::nullopt;
}

}  // namespace hvvss
