// A network emulator for the benchmarks, in user space because this kernel has no sch_netem.
// It owns one TUN device in each of two network namespaces and forwards every IP packet from
// one to the other after a constant one-way delay, with optional random loss and an optional
// rate limit, per direction. The delay is constant, so each direction is a FIFO.
//
//   delay-line --ns-a NAME --ns-b NAME --ifname NAME --delay-us N
//              [--loss P] [--seed N] [--rate-kbit N] [--limit PACKETS]
//
// Prints "ready" once both devices exist (the caller then assigns addresses and brings them up).
// Commands on stdin, one a line: "stats" prints a JSON line of counters; "seed N" restarts both
// directions' loss sequences from seed N. It prints the counters once more and exits at the end
// of stdin, on SIGTERM or SIGINT, and when its parent dies (PR_SET_PDEATHSIG); its TUN devices
// vanish with it.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define SLOT_BYTES 2048 // above any MTU we configure (1500); longer packets are counted and dropped
#define READ_BURST 64   // packets read from one device per wake-up, so neither direction starves

struct packet {
  uint64_t due_ns;
  uint16_t length;
  uint8_t data[SLOT_BYTES];
};

struct direction {
  const char *name;
  int from_fd, to_fd;
  struct packet *ring; // FIFO: the delay is constant, so packets leave in arrival order
  uint32_t head, count, capacity;
  uint64_t link_free_ns; // with a rate limit: when the emulated link has sent its last packet
  uint64_t rng;
  uint64_t received, forwarded, bytes, lost, queue_drops, oversize, write_errors;
  uint64_t late_ns_sum, late_ns_max; // how long after its due time each packet left
};

static uint64_t delay_ns;
static double loss;
static uint64_t rate_bps;
static uint64_t seed;
static int realtime;

static void reseed(struct direction *dirs, uint64_t value) {
  seed = value;
  // Independent sequences per direction, so that one direction's traffic does not shift the other's.
  dirs[0].rng = value;
  dirs[1].rng = value ^ 0x5bd1e9955bd1e995u;
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

// splitmix64: small, seedable, and good enough for Bernoulli loss.
static uint64_t next_random(uint64_t *state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15u);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
  return z ^ (z >> 31);
}

static void die(const char *what) {
  fprintf(stderr, "delay-line: %s: %s\n", what, strerror(errno));
  exit(1);
}

// Creates a TUN device in the named namespace: the device is made in the namespace of the
// thread that calls TUNSETIFF, and lives as long as this file descriptor.
static int open_tun(const char *ns, const char *ifname) {
  char path[256];
  snprintf(path, sizeof path, "/var/run/netns/%s", ns);
  int ns_fd = open(path, O_RDONLY | O_CLOEXEC);
  if (ns_fd < 0) die(path);
  if (setns(ns_fd, CLONE_NEWNET) < 0) die("setns");
  close(ns_fd);
  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) die("/dev/net/tun");
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
  snprintf(ifr.ifr_name, IFNAMSIZ, "%s", ifname);
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) die("TUNSETIFF");
  return fd;
}

static void print_stats(const struct direction *dirs) {
  printf("{\"delayUs\":%.3f,\"loss\":%g,\"seed\":%llu,\"rateKbit\":%llu,\"realtime\":%s", delay_ns / 1e3, loss,
         (unsigned long long)seed, (unsigned long long)(rate_bps / 1000), realtime ? "true" : "false");
  for (int i = 0; i < 2; i++) {
    const struct direction *d = &dirs[i];
    printf(",\"%s\":{\"received\":%llu,\"forwarded\":%llu,\"bytes\":%llu,\"lost\":%llu,\"queueDrops\":%llu,"
           "\"oversize\":%llu,\"writeErrors\":%llu,\"queued\":%u,\"lateUsMean\":%.1f,\"lateUsMax\":%.1f}",
           d->name, (unsigned long long)d->received, (unsigned long long)d->forwarded, (unsigned long long)d->bytes,
           (unsigned long long)d->lost, (unsigned long long)d->queue_drops, (unsigned long long)d->oversize,
           (unsigned long long)d->write_errors, d->count, d->forwarded ? d->late_ns_sum / 1e3 / d->forwarded : 0.0,
           d->late_ns_max / 1e3);
  }
  printf("}\n");
  fflush(stdout);
}

// Reads what the device has (up to a burst) and queues it, or drops it as configured.
static void receive(struct direction *d) {
  for (int n = 0; n < READ_BURST; n++) {
    struct packet *slot = &d->ring[(d->head + d->count) % d->capacity];
    uint8_t scratch[SLOT_BYTES];
    int full = d->count == d->capacity;
    ssize_t length = read(d->from_fd, full ? scratch : slot->data, SLOT_BYTES);
    if (length < 0) {
      if (errno == EAGAIN || errno == EINTR) return;
      die("read");
    }
    d->received++;
    if (length >= SLOT_BYTES) {
      d->oversize++;
      continue;
    }
    // Loss is drawn for every packet, so a run's pattern depends on the seed and the traffic only.
    if (loss > 0 && (double)(next_random(&d->rng) >> 11) * 0x1.0p-53 < loss) {
      d->lost++;
      continue;
    }
    if (full) {
      d->queue_drops++;
      continue;
    }
    uint64_t arrival = now_ns();
    uint64_t departs = arrival;
    if (rate_bps) {
      // The link sends one packet after the other: serialization time at the configured rate.
      if (d->link_free_ns > departs) departs = d->link_free_ns;
      departs += (uint64_t)length * 8u * 1000000000u / rate_bps;
      d->link_free_ns = departs;
    }
    slot->due_ns = departs + delay_ns;
    slot->length = (uint16_t)length;
    d->count++;
  }
}

// Writes every packet whose time has come; returns when the head is not yet due.
static void deliver(struct direction *d, uint64_t now) {
  while (d->count > 0 && d->ring[d->head].due_ns <= now) {
    struct packet *p = &d->ring[d->head];
    if (write(d->to_fd, p->data, p->length) == p->length) {
      uint64_t late = now - p->due_ns;
      d->late_ns_sum += late;
      if (late > d->late_ns_max) d->late_ns_max = late;
      d->forwarded++;
      d->bytes += p->length;
    } else {
      d->write_errors++;
    }
    d->head = (d->head + 1) % d->capacity;
    d->count--;
  }
}

static void arm(int timer_fd, const struct direction *dirs) {
  uint64_t due = 0;
  for (int i = 0; i < 2; i++) {
    if (dirs[i].count == 0) continue;
    uint64_t head = dirs[i].ring[dirs[i].head].due_ns;
    if (due == 0 || head < due) due = head;
  }
  // A zero it_value disarms the timer; an absolute time in the past fires at once.
  struct itimerspec spec = {0};
  if (due) {
    spec.it_value.tv_sec = (time_t)(due / 1000000000u);
    spec.it_value.tv_nsec = (long)(due % 1000000000u);
  }
  if (timerfd_settime(timer_fd, TFD_TIMER_ABSTIME, &spec, NULL) < 0) die("timerfd_settime");
}

// Handles the commands waiting on stdin; false at its end.
static int command(struct direction *dirs) {
  static char line[256];
  static size_t used;
  ssize_t n = read(STDIN_FILENO, line + used, sizeof line - 1 - used);
  if (n < 0) return errno == EAGAIN || errno == EINTR;
  if (n == 0) return 0;
  used += (size_t)n;
  line[used] = 0;
  char *end;
  while ((end = strchr(line, '\n'))) {
    *end = 0;
    if (!strcmp(line, "stats")) print_stats(dirs);
    else if (!strncmp(line, "seed ", 5)) reseed(dirs, strtoull(line + 5, NULL, 10));
    else fprintf(stderr, "delay-line: unknown command \"%s\"\n", line);
    used -= (size_t)(end + 1 - line);
    memmove(line, end + 1, used + 1);
  }
  if (used == sizeof line - 1) used = 0; // an overlong line is dropped
  return 1;
}

static void usage(void) {
  fprintf(stderr, "usage: delay-line --ns-a NAME --ns-b NAME --ifname NAME --delay-us N [--loss P] [--seed N] [--rate-kbit N] [--limit PACKETS]\n");
  exit(2);
}

int main(int argc, char **argv) {
  const char *ns_a = NULL, *ns_b = NULL, *ifname = NULL;
  double delay_us = -1;
  uint32_t limit = 16384;
  for (int i = 1; i + 1 < argc; i += 2) {
    const char *key = argv[i], *value = argv[i + 1];
    if (!strcmp(key, "--ns-a")) ns_a = value;
    else if (!strcmp(key, "--ns-b")) ns_b = value;
    else if (!strcmp(key, "--ifname")) ifname = value;
    else if (!strcmp(key, "--delay-us")) delay_us = atof(value);
    else if (!strcmp(key, "--loss")) loss = atof(value);
    else if (!strcmp(key, "--seed")) seed = strtoull(value, NULL, 10);
    else if (!strcmp(key, "--rate-kbit")) rate_bps = strtoull(value, NULL, 10) * 1000u;
    else if (!strcmp(key, "--limit")) limit = (uint32_t)strtoul(value, NULL, 10);
    else usage();
  }
  if (!ns_a || !ns_b || !ifname || delay_us < 0 || loss < 0 || loss >= 1 || limit == 0 || argc % 2 == 0) usage();
  delay_ns = (uint64_t)(delay_us * 1000);

  // Exit with the runner, even if it is killed; then the devices go too.
  pid_t parent = getppid();
  if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0) die("PR_SET_PDEATHSIG");
  if (getppid() != parent) return 1;
  // The default 50 us timer slack would blur the delay; a real-time priority keeps wake-ups
  // prompt on a busy machine (it sleeps unless packets are due, so it takes little CPU).
  prctl(PR_SET_TIMERSLACK, 1UL);
  struct sched_param param = {.sched_priority = 10};
  realtime = sched_setscheduler(0, SCHED_FIFO, &param) == 0;

  int fd_a = open_tun(ns_a, ifname);
  int fd_b = open_tun(ns_b, ifname);
  struct direction dirs[2] = {
      {.name = "aToB", .from_fd = fd_a, .to_fd = fd_b},
      {.name = "bToA", .from_fd = fd_b, .to_fd = fd_a},
  };
  reseed(dirs, seed);
  for (int i = 0; i < 2; i++) {
    dirs[i].capacity = limit;
    // Pages are touched only as the queue grows, so a large limit costs little.
    dirs[i].ring = calloc(limit, sizeof(struct packet));
    if (!dirs[i].ring) die("calloc");
  }

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  if (sigprocmask(SIG_BLOCK, &signals, NULL) < 0) die("sigprocmask");
  int signal_fd = signalfd(-1, &signals, SFD_CLOEXEC);
  int timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
  int epoll_fd = epoll_create1(EPOLL_CLOEXEC);
  if (signal_fd < 0 || timer_fd < 0 || epoll_fd < 0) die("signalfd/timerfd/epoll");
  int watched[] = {fd_a, fd_b, timer_fd, signal_fd, STDIN_FILENO};
  for (int i = 0; i < 5; i++) {
    struct epoll_event event = {.events = EPOLLIN, .data.fd = watched[i]};
    if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, watched[i], &event) < 0) die("epoll_ctl");
  }

  printf("ready\n");
  fflush(stdout);
  for (;;) {
    struct epoll_event events[5];
    int n = epoll_wait(epoll_fd, events, 5, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait");
    }
    for (int i = 0; i < n; i++) {
      int fd = events[i].data.fd;
      if (fd == fd_a) receive(&dirs[0]);
      else if (fd == fd_b) receive(&dirs[1]);
      else if (fd == timer_fd) {
        uint64_t expirations;
        if (read(timer_fd, &expirations, sizeof expirations) < 0 && errno != EAGAIN) die("read timerfd");
      } else if (fd == signal_fd) {
        print_stats(dirs);
        return 0;
      } else if (!command(dirs)) {
        print_stats(dirs);
        return 0;
      }
    }
    uint64_t now = now_ns();
    deliver(&dirs[0], now);
    deliver(&dirs[1], now);
    arm(timer_fd, dirs);
  }
}
