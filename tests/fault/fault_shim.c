/* Fault injection for the integration tests: preloaded into hv-vss-agent, it delays or fails
 * FIFREEZE and FITHAW on the mount points named in $HV_VSS_FAULTS, so tests can reproduce a
 * stuck freeze or a failing thaw on real filesystems. Every other ioctl passes through.
 *
 *   HV_VSS_FAULTS="freeze:/mnt/a=delay:30000;thaw:/mnt/b=fail:EIO:1"
 *
 * Each rule is OP:PATH=ACTION with OP freeze or thaw, PATH the mount point as the agent opened
 * it, and ACTION delay:MS (sleep, then do the real call) or fail:ERRNO[:COUNT] (fail the first
 * COUNT calls, all of them without COUNT). ERRNO is EIO, EBUSY, EINVAL, ENOMEM or EPERM. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define MAX_RULES 16

struct rule {
  unsigned long request; /* FIFREEZE or FITHAW */
  char path[4096];
  long delay_ms;  /* > 0: delay */
  int error;      /* != 0: fail with it */
  int remaining;  /* failures left; -1: every call */
};

static struct rule rules[MAX_RULES];
static int n_rules = -1;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static int errno_named(const char *name) {
  static const struct {
    const char *name;
    int value;
  } names[] = {{"EIO", EIO}, {"EBUSY", EBUSY}, {"EINVAL", EINVAL}, {"ENOMEM", ENOMEM}, {"EPERM", EPERM}};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; ++i)
    if (strcmp(names[i].name, name) == 0) return names[i].value;
  return EIO;
}

/* Parses one OP:PATH=ACTION rule; ignores a malformed one (and says so). */
static void parse_rule(char *text) {
  char *colon = strchr(text, ':'), *eq = strrchr(text, '=');
  if (!colon || !eq || eq < colon || n_rules >= MAX_RULES) {
    fprintf(stderr, "fault_shim: ignoring rule '%s'\n", text);
    return;
  }
  *colon = *eq = '\0';
  struct rule *r = &rules[n_rules];
  memset(r, 0, sizeof *r);
  r->request = strcmp(text, "thaw") == 0 ? FITHAW : FIFREEZE;
  snprintf(r->path, sizeof r->path, "%s", colon + 1);
  char *action = eq + 1;
  if (strncmp(action, "delay:", 6) == 0) {
    r->delay_ms = strtol(action + 6, NULL, 10);
  } else if (strncmp(action, "fail:", 5) == 0) {
    char *count = strchr(action + 5, ':');
    if (count) *count++ = '\0';
    r->error = errno_named(action + 5);
    r->remaining = count ? atoi(count) : -1;
  } else {
    fprintf(stderr, "fault_shim: ignoring action '%s'\n", action);
    return;
  }
  ++n_rules;
}

static void load_rules(void) {
  n_rules = 0;
  const char *spec = getenv("HV_VSS_FAULTS");
  if (!spec) return;
  char *copy = strdup(spec), *save = NULL;
  for (char *item = strtok_r(copy, ";", &save); item; item = strtok_r(NULL, ";", &save)) parse_rule(item);
  free(copy);
}

/* The rule for this call, if any: matched on the path the descriptor was opened with. */
static struct rule *rule_for(int fd, unsigned long request) {
  char link[64], path[4096];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, path, sizeof path - 1);
  if (n <= 0) return NULL;
  path[n] = '\0';
  for (int i = 0; i < n_rules; ++i)
    if (rules[i].request == request && strcmp(rules[i].path, path) == 0) return &rules[i];
  return NULL;
}

int ioctl(int fd, unsigned long request, ...) {
  static int (*real_ioctl)(int, unsigned long, ...);
  va_list args;
  va_start(args, request);
  void *arg = va_arg(args, void *);
  va_end(args);
  if (!real_ioctl) real_ioctl = (int (*)(int, unsigned long, ...))dlsym(RTLD_NEXT, "ioctl");
  if (request != FIFREEZE && request != FITHAW) return real_ioctl(fd, request, arg);

  pthread_mutex_lock(&lock);
  if (n_rules < 0) load_rules();
  struct rule *r = rule_for(fd, request);
  long delay_ms = r ? r->delay_ms : 0;
  int error = 0;
  if (r && r->error && r->remaining != 0) {
    error = r->error;
    if (r->remaining > 0) --r->remaining;
  }
  pthread_mutex_unlock(&lock);

  if (error) {
    errno = error;
    return -1;
  }
  if (delay_ms > 0) {
    struct timespec ts = {delay_ms / 1000, (delay_ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
  }
  return real_ioctl(fd, request, arg);
}
