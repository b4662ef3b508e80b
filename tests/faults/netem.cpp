// corral-netem: delay and reordering for the fault suite, where the kernel
// has no netem qdisc. Packets that an iptables rule sends to an NFQUEUE are
// held in user space for a random time and then released; since each one
// draws its own delay, later packets overtake earlier ones (reordering).
//
//   corral-netem --queue N --delay MS [--jitter MS] [--max-held COUNT]
//
// Run inside a server's network namespace, with a rule such as
//   iptables -A OUTPUT -o eth0 -j NFQUEUE --queue-num N --queue-bypass
// (--queue-bypass lets packets through when the tool is not running, so a
// killed tool never cuts the link). SIGTERM or SIGINT releases every held
// packet and exits. At most --max-held packets are held (default 65536);
// beyond that a packet is released at once, and the count of those is
// printed at exit.
#include <arpa/inet.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <linux/netfilter.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <queue>
#include <random>
#include <string>
#include <vector>

namespace {

volatile std::sig_atomic_t g_stop = 0;

void on_signal(int) { g_stop = 1; }

using Clock = std::chrono::steady_clock;

struct Held {
  Clock::time_point release;
  uint32_t id;
  bool operator>(const Held& o) const { return release > o.release; }
};

struct State {
  std::priority_queue<Held, std::vector<Held>, std::greater<Held>> held;
  std::mt19937_64 rng{std::random_device{}()};
  long delay_ms = 0, jitter_ms = 0;
  size_t max_held = 65536;
  unsigned long long passed_at_once = 0, delayed = 0;
  nfq_q_handle* queue = nullptr;
};

int on_packet(nfq_q_handle* qh, nfgenmsg*, nfq_data* nfa, void* data) {
  auto* st = static_cast<State*>(data);
  nfqnl_msg_packet_hdr* ph = nfq_get_msg_packet_hdr(nfa);
  if (!ph) return 0;
  uint32_t id = ntohl(ph->packet_id);
  if (st->held.size() >= st->max_held) {
    ++st->passed_at_once;
    return nfq_set_verdict(qh, id, NF_ACCEPT, 0, nullptr);
  }
  std::uniform_int_distribution<long> d(std::max(0L, st->delay_ms - st->jitter_ms),
                                        st->delay_ms + st->jitter_ms);
  st->held.push(Held{Clock::now() + std::chrono::milliseconds(d(st->rng)), id});
  ++st->delayed;
  return 0;
}

void release_due(State& st, bool all) {
  auto now = Clock::now();
  while (!st.held.empty() && (all || st.held.top().release <= now)) {
    nfq_set_verdict(st.queue, st.held.top().id, NF_ACCEPT, 0, nullptr);
    st.held.pop();
  }
}

long number(const char* flag, const char* v) {
  char* end = nullptr;
  long n = std::strtol(v, &end, 10);
  if (!*v || *end || n < 0) {
    std::fprintf(stderr, "corral-netem: %s wants a non-negative number, not '%s'\n", flag, v);
    std::exit(2);
  }
  return n;
}

}  // namespace

int main(int argc, char** argv) {
  State st;
  long queue_num = -1;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (i + 1 >= argc) {
      std::fprintf(stderr, "corral-netem: %s wants a value\n", a.c_str());
      return 2;
    }
    const char* v = argv[++i];
    if (a == "--queue")
      queue_num = number("--queue", v);
    else if (a == "--delay")
      st.delay_ms = number("--delay", v);
    else if (a == "--jitter")
      st.jitter_ms = number("--jitter", v);
    else if (a == "--max-held")
      st.max_held = static_cast<size_t>(number("--max-held", v));
    else {
      std::fprintf(stderr, "corral-netem: unknown option %s\n", a.c_str());
      return 2;
    }
  }
  if (queue_num < 0 || queue_num > 65535) {
    std::fprintf(stderr, "usage: corral-netem --queue N --delay MS [--jitter MS] [--max-held N]\n");
    return 2;
  }
  nfq_handle* h = nfq_open();
  if (!h) {
    std::fprintf(stderr, "corral-netem: nfq_open: %s\n", std::strerror(errno));
    return 1;
  }
  st.queue = nfq_create_queue(h, static_cast<uint16_t>(queue_num), &on_packet, &st);
  if (!st.queue) {
    std::fprintf(stderr, "corral-netem: cannot bind queue %ld: %s\n", queue_num,
                 std::strerror(errno));
    nfq_close(h);
    return 1;
  }
  // Only the packet's id is needed, never its bytes.
  if (nfq_set_mode(st.queue, NFQNL_COPY_META, 0) < 0 ||
      nfq_set_queue_maxlen(st.queue, static_cast<uint32_t>(st.max_held)) < 0) {
    std::fprintf(stderr, "corral-netem: cannot configure queue %ld\n", queue_num);
    return 1;
  }
  std::signal(SIGTERM, on_signal);
  std::signal(SIGINT, on_signal);
  int fd = nfq_fd(h);
  std::printf("corral-netem: queue %ld, delay %ld ms +/- %ld ms\n", queue_num, st.delay_ms,
              st.jitter_ms);
  std::fflush(stdout);
  std::vector<char> buf(65536);
  while (!g_stop) {
    int timeout = 100;
    if (!st.held.empty()) {
      auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(st.held.top().release -
                                                                        Clock::now());
      timeout = static_cast<int>(std::max<long long>(0, std::min<long long>(100, wait.count())));
    }
    pollfd p{fd, POLLIN, 0};
    int r = poll(&p, 1, timeout);
    if (r > 0 && (p.revents & POLLIN)) {
      ssize_t n = recv(fd, buf.data(), buf.size(), MSG_DONTWAIT);
      if (n > 0) nfq_handle_packet(h, buf.data(), static_cast<int>(n));
      // ENOBUFS: the kernel dropped queued packets (TCP resends them).
    }
    release_due(st, false);
  }
  release_due(st, true);
  std::printf("corral-netem: %llu packets delayed, %llu passed at once (queue full)\n", st.delayed,
              st.passed_at_once);
  nfq_destroy_queue(st.queue);
  nfq_close(h);
  return 0;
}
