/* hv-vss-bench-shim: LD_PRELOAD library that lets the benchmark drive a VSS daemon safely.
 *
 *   HV_VSS_SHIM_SOCKET=PATH  open("/dev/vmbus/hv_vss") connects to the simulator's socket instead
 *   HV_VSS_SHIM_MOUNTS=FILE  setmntent("/proc/mounts") reads FILE: the daemon sees only the
 *                            benchmark's filesystems, never "/"
 *   HV_VSS_SHIM_TRACE=FILE   appends "start <CLOCK_MONOTONIC ns> 0" when the process starts, and
 *                            "freeze-start", "freeze" or "thaw" <ns> <errno> around FIFREEZE/FITHAW
 *
 * The upstream daemon runs unmodified; hv-vss-agent is preloaded with the trace part only, so
 * both are timed by the same code. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <mntent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static const char kDevice[] = "/dev/vmbus/hv_vss";

static int connect_simulator(const char* path) {
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof addr.sun_path) {
    errno = ENAMETOOLONG;
    return -1;
  }
  strcpy(addr.sun_path, path);
  int fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
  if (fd < 0) return -1;
  if (connect(fd, (struct sockaddr*)&addr, sizeof addr) != 0) {
    int saved = errno;
    close(fd);
    errno = saved == ENOENT ? ENOENT : EBUSY;
    return -1;
  }
  return fd;
}

static int redirected_open(const char* path, int* fd) {
  const char* socket_path = getenv("HV_VSS_SHIM_SOCKET");
  if (!socket_path || strcmp(path, kDevice) != 0) return 0;
  *fd = connect_simulator(socket_path);
  return 1;
}

#define REAL(name) ((__typeof__(&name))dlsym(RTLD_NEXT, #name))

int open(const char* path, int flags, ...) {
  int fd;
  if (redirected_open(path, &fd)) return fd;
  va_list ap;
  va_start(ap, flags);
  mode_t mode = (flags & (O_CREAT | O_TMPFILE)) ? va_arg(ap, mode_t) : 0;
  va_end(ap);
  return REAL(open)(path, flags, mode);
}

FILE* setmntent(const char* file, const char* type) {
  const char* mounts = getenv("HV_VSS_SHIM_MOUNTS");
  if (mounts && strcmp(file, "/proc/mounts") == 0) file = mounts;
  return REAL(setmntent)(file, type);
}

static void trace(const char* what, int rc) {
  static int fd = -2;
  if (fd == -2) {
    const char* path = getenv("HV_VSS_SHIM_TRACE");
    fd = path ? REAL(open)(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644) : -1;
  }
  if (fd < 0) return;
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  char line[96];
  int n = snprintf(line, sizeof line, "%s %lld %d\n", what, (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec, rc);
  if (write(fd, line, (size_t)n) < 0) return;
}

__attribute__((constructor)) static void on_start(void) {
  if (getenv("HV_VSS_SHIM_TRACE")) trace("start", 0);
}

int ioctl(int fd, unsigned long request, ...) {
  va_list ap;
  va_start(ap, request);
  void* arg = va_arg(ap, void*);
  va_end(ap);
  if (request == FIFREEZE) trace("freeze-start", 0);
  int rc = REAL(ioctl)(fd, request, arg);
  if (request == FIFREEZE || request == FITHAW) {
    int saved = errno;
    trace(request == FIFREEZE ? "freeze" : "thaw", rc == 0 ? 0 : saved);
    errno = saved;
  }
  return rc;
}
