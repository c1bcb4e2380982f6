// Private database servers for hv-vss-hold's tests: each lives in a directory the test makes under
// /tmp, listens only on a Unix socket there, and is stopped and removed with the object, so no
// system service is involved. A $NOTIFY_SOCKET of the test's own receives what hv-vss-hold tells
// systemd.
#pragma once

#include "agent/unique_fd.h"
#include "tests/integration/harness.h"

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace hvvss::test {

// A directory under /tmp that the database users can enter, removed with everything in it.
class DbScratch {
 public:
  DbScratch();
  ~DbScratch();
  DbScratch(const DbScratch&) = delete;
  DbScratch& operator=(const DbScratch&) = delete;
  const std::string& path() const { return path_; }
  // A subdirectory owned by `user`.
  std::string owned_dir(const std::string& name, const std::string& user) const;

 private:
  std::string path_;
};

// True once `path` contains `text`, within kPatience (inotify on the file's directory).
bool file_gets_text(const std::string& path, const std::string& text);
std::string read_file(const std::string& path);

// A private MariaDB server (mariadb-install-db, mariadbd --skip-networking as user mysql).
class PrivateMariaDb {
 public:
  // Why the server cannot run here ("mariadbd is not installed"), or nothing.
  static std::optional<std::string> missing();
  PrivateMariaDb();
  ~PrivateMariaDb();
  PrivateMariaDb(const PrivateMariaDb&) = delete;
  PrivateMariaDb& operator=(const PrivateMariaDb&) = delete;

  // The client arguments that reach this server as root (unix_socket authentication).
  std::vector<std::string> client_args() const;
  // Runs statements with the mariadb client; its output (tab-separated, no headers).
  std::string query(const std::string& sql) const;
  // Starts the client running `sql` in the background.
  std::unique_ptr<Process> start_query(const std::string& sql, const std::string& name) const;
  // True once `sql` prints `expected`, within kPatience.
  bool eventually(const std::string& sql, const std::string& expected) const;
  const std::string& dir() const { return scratch_.path(); }

 private:
  DbScratch scratch_;
  std::string socket_;
  std::unique_ptr<Process> server_;
};

// A private PostgreSQL server (initdb and postgres as user postgres, trust authentication, every
// statement logged with its application name and duration in DIR/server.log).
class PrivatePostgres {
 public:
  static std::optional<std::string> missing();
  PrivatePostgres();
  ~PrivatePostgres();
  PrivatePostgres(const PrivatePostgres&) = delete;
  PrivatePostgres& operator=(const PrivatePostgres&) = delete;

  std::vector<std::string> client_args() const;  // -h SOCKETDIR -U postgres
  std::string query(const std::string& sql) const;
  std::unique_ptr<Process> start_query(const std::string& sql, const std::string& name) const;
  bool eventually(const std::string& sql, const std::string& expected) const;
  std::string log_path() const { return scratch_.path() + "/server.log"; }
  const std::string& dir() const { return scratch_.path(); }

 private:
  DbScratch scratch_;
  std::string socket_dir_;
  std::unique_ptr<Process> server_;
};

// A $NOTIFY_SOCKET (datagram) for the process under test.
class NotifySocket {
 public:
  explicit NotifySocket(const std::string& path);
  std::string env() const { return "NOTIFY_SOCKET=" + path_; }
  // The next message, or nothing within `timeout`.
  std::optional<std::string> receive(Clock::duration timeout = kPatience);

 private:
  std::string path_;
  UniqueFd fd_;
};

}  // namespace hvvss::test
