// Same-node splice (bpf/splice.bpf.c): put two connected TCP sockets into the splice maps so
// the kernel moves their bytes, take them out again, and read the TCP counters the daemon
// needs to know when a direction has drained and how many bytes a connection carried.
#include <bpf/bpf.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <linux/tcp.h>  // struct tcp_info with bytes_acked (glibc's is older)
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>

#include "common.h"

#ifndef SO_COOKIE
#define SO_COOKIE 57
#endif

namespace nodemesh {

namespace {

bool Cookie(int fd, uint64_t* out, int* err) {
  socklen_t len = sizeof(*out);
  if (getsockopt(fd, SOL_SOCKET, SO_COOKIE, out, &len) != 0) {
    *err = errno;
    return false;
  }
  return true;
}

bool ArgFd(const Napi::CallbackInfo& info, size_t i, int* fd, const char* usage) {
  int64_t v;
  if (!ArgInt(info, i, 0, INT32_MAX, &v, usage)) return false;
  *fd = static_cast<int>(v);
  return true;
}

bool ArgU64(const Napi::CallbackInfo& info, size_t i, uint64_t* out, const char* usage) {
  if (!info[i].IsBigInt()) {
    ThrowType(info.Env(), usage);
    return false;
  }
  bool lossless = false;
  *out = info[i].As<Napi::BigInt>().Uint64Value(&lossless);
  if (!lossless) {
    ThrowType(info.Env(), usage);
    return false;
  }
  return true;
}

// Deletes a key, ignoring ENOENT (a closed socket has already left its sockhashes).
void DeleteQuiet(int map_fd, uint64_t key) { bpf_map_delete_elem(map_fd, &key); }

constexpr int kFlagKick = 1 << 0;

constexpr const char* kSpliceUsage =
    "spliceSockets(txFd: number, rxFd: number, peerFd: number, fdA: number, fdB: number, flags: number): "
    "{ rx: number, cookieA: bigint, cookieB: bigint }";

// Order matters (see bpf/splice.bpf.c): both sockets into tx, both peers, then rx for A and
// for B. Until the first rx insert nothing has changed for the bytes, so any failure up to
// there is rolled back and thrown. If A is in rx but B cannot join (B's peer half-closed in
// between), A's direction stays in the kernel and rx says so (bit 0 A, bit 1 B): the caller
// relays B's direction itself. flags bit 0: kick each socket in rx with SO_RCVLOWAT=1
// (tcp_set_rcvlowat calls tcp_data_ready), so bytes queued before the insert are redirected
// now instead of at the next segment.
Napi::Value SpliceSockets(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int tx, rx, peer, fds[2];
  int64_t flags;
  if (!ArgCount(info, 6, kSpliceUsage) || !ArgFd(info, 0, &tx, kSpliceUsage) || !ArgFd(info, 1, &rx, kSpliceUsage) ||
      !ArgFd(info, 2, &peer, kSpliceUsage) || !ArgFd(info, 3, &fds[0], kSpliceUsage) ||
      !ArgFd(info, 4, &fds[1], kSpliceUsage) || !ArgInt(info, 5, 0, 1, &flags, kSpliceUsage))
    return env.Undefined();
  uint64_t cookies[2];
  int err = 0;
  for (int i = 0; i < 2; i++) {
    if (!Cookie(fds[i], &cookies[i], &err)) {
      ThrowErrno(env, err, "getsockopt", "SO_COOKIE of fd " + std::to_string(fds[i]));
      return env.Undefined();
    }
  }
  auto rollback = [&](int tx_done, int peers_done) {
    for (int i = 0; i < peers_done; i++) DeleteQuiet(peer, cookies[i]);
    for (int i = 0; i < tx_done; i++) DeleteQuiet(tx, cookies[i]);
  };
  for (int i = 0; i < 2; i++) {
    uint64_t value = static_cast<uint64_t>(fds[i]);
    if (bpf_map_update_elem(tx, &cookies[i], &value, BPF_NOEXIST) != 0) {
      err = errno;
      rollback(i, 0);
      ThrowErrno(env, err, "bpf_map_update_elem", "nm_splice_tx fd " + std::to_string(fds[i]));
      return env.Undefined();
    }
  }
  for (int i = 0; i < 2; i++) {
    if (bpf_map_update_elem(peer, &cookies[i], &cookies[1 - i], BPF_ANY) != 0) {
      err = errno;
      rollback(2, i);
      ThrowErrno(env, err, "bpf_map_update_elem", "nm_splice_peer");
      return env.Undefined();
    }
  }
  int in_rx = 0;
  for (int i = 0; i < 2; i++) {
    uint64_t value = static_cast<uint64_t>(fds[i]);
    if (bpf_map_update_elem(rx, &cookies[i], &value, BPF_NOEXIST) != 0) {
      err = errno;
      if (i == 0) {
        rollback(2, 2);
        ThrowErrno(env, err, "bpf_map_update_elem", "nm_splice_rx fd " + std::to_string(fds[i]));
        return env.Undefined();
      }
      break;
    }
    in_rx |= 1 << i;
  }
  if (flags & kFlagKick) {
    int one = 1;
    for (int i = 0; i < 2; i++)
      if (in_rx & (1 << i)) setsockopt(fds[i], SOL_SOCKET, SO_RCVLOWAT, &one, sizeof(one));
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("rx", Napi::Number::New(env, in_rx));
  out.Set("cookieA", Napi::BigInt::New(env, cookies[0]));
  out.Set("cookieB", Napi::BigInt::New(env, cookies[1]));
  return out;
}

constexpr const char* kRemoveUsage =
    "spliceRemove(txFd: number, rxFd: number, peerFd: number, cookieA: bigint, cookieB: bigint): void";

Napi::Value SpliceRemove(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int tx, rx, peer;
  uint64_t cookies[2];
  if (!ArgCount(info, 5, kRemoveUsage) || !ArgFd(info, 0, &tx, kRemoveUsage) || !ArgFd(info, 1, &rx, kRemoveUsage) ||
      !ArgFd(info, 2, &peer, kRemoveUsage) || !ArgU64(info, 3, &cookies[0], kRemoveUsage) ||
      !ArgU64(info, 4, &cookies[1], kRemoveUsage))
    return env.Undefined();
  for (uint64_t c : cookies) {
    DeleteQuiet(rx, c);
    DeleteQuiet(peer, c);
    DeleteQuiet(tx, c);
  }
  return env.Undefined();
}

constexpr const char* kCountersUsage = "tcpCounters(fd: number): [bytesAcked, bytesReceived, unsent]";

// TCP_INFO's bytes_acked and bytes_received (which count SYN and FIN as the kernel does:
// the caller takes baselines) and SIOCOUTQ (bytes written but not yet acked).
Napi::Value TcpCounters(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  if (!ArgCount(info, 1, kCountersUsage) || !ArgFd(info, 0, &fd, kCountersUsage)) return env.Undefined();
  struct tcp_info ti;
  memset(&ti, 0, sizeof(ti));
  socklen_t len = sizeof(ti);
  if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0) {
    ThrowErrno(env, errno, "getsockopt", "TCP_INFO of fd " + std::to_string(fd));
    return env.Undefined();
  }
  int outq = 0;
  if (ioctl(fd, SIOCOUTQ, &outq) != 0) {
    ThrowErrno(env, errno, "ioctl", "SIOCOUTQ of fd " + std::to_string(fd));
    return env.Undefined();
  }
  Napi::Array out = Napi::Array::New(env, 3);
  out.Set(0u, Napi::Number::New(env, static_cast<double>(ti.tcpi_bytes_acked)));
  out.Set(1u, Napi::Number::New(env, static_cast<double>(ti.tcpi_bytes_received)));
  out.Set(2u, Napi::Number::New(env, outq));
  return out;
}

}  // namespace

void InitSplice(Napi::Env env, Napi::Object exports) {
  exports.Set("spliceSockets", Napi::Function::New(env, SpliceSockets, "spliceSockets"));
  exports.Set("spliceRemove", Napi::Function::New(env, SpliceRemove, "spliceRemove"));
  exports.Set("tcpCounters", Napi::Function::New(env, TcpCounters, "tcpCounters"));
}

}  // namespace nodemesh
