#include "tests/integration/db_harness.h"

#include <poll.h>
#include <pwd.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <stdexcept>

namespace hvvss::test {
namespace {

int millis_until(Clock::time_point deadline) {
  auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return static_cast<int>(std::max<long long>(left, 0));
}

// Runs a client to its end; its stdout, or an exception with its stderr.
std::string capture(const std::vector<std::string>& argv, const std::string& dir) {
  std::string err_path = dir + "/client.err";
  std::filesystem::remove(err_path);
  Process client(argv, err_path);
  std::string out;
  while (auto line = client.read_line()) out += *line + "\n";
  if (int status = client.wait(); status != 0)
    throw std::runtime_error(argv[0] + " failed (" + std::to_string(status) + "): " + read_file(err_path));
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

bool poll_until(const std::function<bool()>& condition) {
  auto deadline = Clock::now() + kPatience;
  while (Clock::now() < deadline)
    if (condition()) return true;
  return false;
}

// The newest installed PostgreSQL server's bin directory (Debian: /usr/lib/postgresql/15/bin).
std::string postgres_bindir() {
  std::string best;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/usr/lib/postgresql", ec))
    if (std::filesystem::exists(entry.path() / "bin/postgres")) best = std::max(best, entry.path().string());
  return best.empty() ? best : best + "/bin";
}

bool on_path(const std::string& program) {
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/bin:/bin:/usr/sbin:/sbin";
  for (size_t start = 0; start <= dirs.size();) {
    size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    if (access((dirs.substr(start, end - start) + "/" + program).c_str(), X_OK) == 0) return true;
    start = end + 1;
  }
  return false;
}

std::vector<std::string> as_user(const std::string& user, std::vector<std::string> argv) {
  std::vector<std::string> full{"setpriv", "--reuid=" + user, "--regid=" + user, "--init-groups", "--"};
  full.insert(full.end(), argv.begin(), argv.end());
  return full;
}

}  // namespace

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

bool file_gets_text(const std::string& path, const std::string& text) {
  UniqueFd watch(inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
  std::string dir = std::filesystem::path(path).parent_path();
  if (!watch || inotify_add_watch(watch.get(), dir.c_str(), IN_MODIFY | IN_CREATE | IN_CLOSE_WRITE) < 0)
    throw std::runtime_error("inotify on " + dir + ": " + std::strerror(errno));
  auto deadline = Clock::now() + kPatience;
  for (;;) {
    if (read_file(path).find(text) != std::string::npos) return true;
    pollfd pfd{watch.get(), POLLIN, 0};
    if (poll(&pfd, 1, millis_until(deadline)) <= 0) return false;
    char events[4096];
    while (read(watch.get(), events, sizeof events) > 0) {
    }
  }
}

DbScratch::DbScratch() {
  path_ = "/tmp/hv-vss-hold-db.XXXXXX";
  if (!mkdtemp(path_.data())) throw std::runtime_error("mkdtemp failed");
  chmod(path_.c_str(), 0755);
}

DbScratch::~DbScratch() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string DbScratch::owned_dir(const std::string& name, const std::string& user) const {
  std::string dir = path_ + "/" + name;
  std::filesystem::create_directory(dir);
  const passwd* pw = getpwnam(user.c_str());
  if (!pw || chown(dir.c_str(), pw->pw_uid, pw->pw_gid) != 0)
    throw std::runtime_error("cannot give " + dir + " to " + user);
  return dir;
}

std::optional<std::string> PrivateMariaDb::missing() {
  for (const char* program : {"mariadbd", "mariadb-install-db", "mariadb"})
    if (!on_path(program) && access((std::string("/usr/sbin/") + program).c_str(), X_OK) != 0)
      return std::string(program) + " is not installed (Debian: mariadb-server, mariadb-client)";
  if (!getpwnam("mysql")) return std::string("there is no user mysql (Debian: mariadb-server)");
  return std::nullopt;
}

PrivateMariaDb::PrivateMariaDb() {
  std::string data = scratch_.owned_dir("data", "mysql"), run = scratch_.owned_dir("run", "mysql");
  socket_ = run + "/mysqld.sock";
  capture({"mariadb-install-db", "--no-defaults", "--datadir=" + data, "--user=mysql", "--skip-test-db"}, dir());
  std::string log = run + "/server.log";
  server_ =
      std::make_unique<Process>(std::vector<std::string>{"mariadbd", "--no-defaults", "--datadir=" + data,
                                                         "--socket=" + socket_, "--skip-networking", "--user=mysql",
                                                         "--pid-file=" + run + "/mysqld.pid", "--log-error=" + log},
                                dir() + "/server.stderr");
  if (!file_gets_text(log, "ready for connections"))
    throw std::runtime_error("mariadbd did not get ready: " + read_file(log) + read_file(dir() + "/server.stderr"));
}

PrivateMariaDb::~PrivateMariaDb() {
  server_->kill(SIGTERM);
  server_->wait();
}

std::vector<std::string> PrivateMariaDb::client_args() const {
  return {"--no-defaults", "--socket=" + socket_, "-u", "root"};
}

std::string PrivateMariaDb::query(const std::string& sql) const {
  std::vector<std::string> argv{"mariadb"};
  for (const auto& a : client_args()) argv.push_back(a);
  for (const char* flag : {"--batch", "--skip-column-names", "-e"}) argv.emplace_back(flag);
  argv.push_back(sql);
  return capture(argv, dir());
}

std::unique_ptr<Process> PrivateMariaDb::start_query(const std::string& sql, const std::string& name) const {
  std::vector<std::string> argv{"mariadb"};
  for (const auto& a : client_args()) argv.push_back(a);
  argv.insert(argv.end(), {"--batch", "-e", sql});
  return std::make_unique<Process>(argv, dir() + "/" + name + ".err");
}

bool PrivateMariaDb::eventually(const std::string& sql, const std::string& expected) const {
  return poll_until([&] { return query(sql) == expected; });
}

std::optional<std::string> PrivatePostgres::missing() {
  if (postgres_bindir().empty())
    return std::string("no PostgreSQL server under /usr/lib/postgresql (Debian: postgresql)");
  if (!on_path("psql")) return std::string("psql is not installed (Debian: postgresql-client)");
  if (!getpwnam("postgres")) return std::string("there is no user postgres (Debian: postgresql)");
  return std::nullopt;
}

PrivatePostgres::PrivatePostgres() {
  std::string bin = postgres_bindir(), data = scratch_.owned_dir("data", "postgres");
  socket_dir_ = scratch_.owned_dir("run", "postgres");
  capture(as_user("postgres", {bin + "/initdb", "--auth=trust", "-U", "postgres", "-D", data}), dir());
  server_ = std::make_unique<Process>(
      as_user("postgres", {bin + "/postgres", "-D", data, "-k", socket_dir_, "-c", "listen_addresses=", "-c",
                           "log_min_duration_statement=0", "-c", "log_line_prefix=%a "}),
      log_path());
  if (!file_gets_text(log_path(), "database system is ready to accept connections"))
    throw std::runtime_error("postgres did not get ready: " + read_file(log_path()));
}

PrivatePostgres::~PrivatePostgres() {
  server_->kill(SIGINT);  // fast shutdown: ends any session still open
  server_->wait();
}

std::vector<std::string> PrivatePostgres::client_args() const { return {"-h", socket_dir_, "-U", "postgres"}; }

std::string PrivatePostgres::query(const std::string& sql) const {
  std::vector<std::string> argv{"psql"};
  for (const auto& a : client_args()) argv.push_back(a);
  argv.insert(argv.end(), {"-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql});
  return capture(argv, dir());
}

std::unique_ptr<Process> PrivatePostgres::start_query(const std::string& sql, const std::string& name) const {
  std::vector<std::string> argv{"psql"};
  for (const auto& a : client_args()) argv.push_back(a);
  argv.insert(argv.end(), {"-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql});
  return std::make_unique<Process>(argv, dir() + "/" + name + ".err", false,
                                   std::vector<std::string>{"PGAPPNAME=" + name});
}

bool PrivatePostgres::eventually(const std::string& sql, const std::string& expected) const {
  return poll_until([&] { return query(sql) == expected; });
}

NotifySocket::NotifySocket(const std::string& path) : path_(path) {
  fd_ = UniqueFd(socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  if (!fd_ || bind(fd_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    throw std::runtime_error("cannot bind " + path + ": " + std::strerror(errno));
}

std::optional<std::string> NotifySocket::receive(Clock::duration timeout) {
  pollfd pfd{fd_.get(), POLLIN, 0};
  if (poll(&pfd, 1, millis_until(Clock::now() + timeout)) <= 0) return std::nullopt;
  char buf[4096];
  ssize_t n = recv(fd_.get(), buf, sizeof buf, 0);
  if (n < 0) return std::nullopt;
  return std::string(buf, static_cast<size_t>(n));
}

}  // namespace hvvss::test
