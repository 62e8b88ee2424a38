// Sockets inside other network namespaces: setns there, create the socket, setns back, all
// synchronously on the calling thread (setns(CLONE_NEWNET) only moves this thread). The
// thread must never stay in a pod's namespace: if returning fails, abort.
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/in.h>
#include <linux/in6.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "common.h"

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif
#ifndef SO_COOKIE
#define SO_COOKIE 57
#endif
#ifndef IPV6_FREEBIND
#define IPV6_FREEBIND 78
#endif

namespace nodemesh {

namespace {

constexpr int kFlagReuseAddr = 1 << 0;
constexpr int kFlagFreebind = 1 << 1;
constexpr int kFlagV6Only = 1 << 2;
constexpr int kFlagTransparent = 1 << 3;
constexpr int kFlagReusePort = 1 << 4;
constexpr int kFlagsAll = kFlagReuseAddr | kFlagFreebind | kFlagV6Only | kFlagTransparent | kFlagReusePort;

struct SysErr {
  int err = 0;
  const char* syscall = nullptr;
  std::string what;
  bool Set(const char* sc, const std::string& w) {
    err = errno;
    syscall = sc;
    what = w;
    return false;
  }
};

// Runs fn inside the namespace at path and always comes back. Returns false with *e set if
// entering or fn failed.
template <typename Fn>
bool InNetns(const std::string& path, SysErr* e, Fn fn) {
  int self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (self < 0) return e->Set("open", "/proc/thread-self/ns/net");
  int target = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (target < 0) {
    e->Set("open", path);
    close(self);
    return false;
  }
  struct stat st_self {}, st_target {};
  if (fstat(self, &st_self) == 0 && fstat(target, &st_target) == 0 && st_self.st_dev == st_target.st_dev &&
      st_self.st_ino == st_target.st_ino) {
    // Already there: no setns (which would need CAP_SYS_ADMIN for nothing).
    close(target);
    close(self);
    return fn(e);
  }
  if (setns(target, CLONE_NEWNET) != 0) {
    e->Set("setns", path);
    close(target);
    close(self);
    return false;
  }
  close(target);
  bool ok = fn(e);
  int saved = errno;
  if (setns(self, CLONE_NEWNET) != 0) {
    // Continuing would run the rest of the daemon inside a pod's namespace.
    fprintf(stderr, "nodemesh native: FATAL: cannot return to the original network namespace after entering %s: %s\n",
            path.c_str(), strerror(errno));
    abort();
  }
  close(self);
  errno = saved;
  return ok;
}

// The calling thread's own namespace, opened once: the daemon creates a socket in a pod's
// namespace per upstream connection, and opening /proc/thread-self/ns/net (a procfs walk and
// an nsfs inode) every time cost more than the two setns calls themselves.
struct SelfNs {
  int fd = -1;
  struct stat st {};
};
thread_local SelfNs self_ns;

bool SelfNetns(SysErr* e) {
  if (self_ns.fd >= 0) return true;
  int fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return e->Set("open", "/proc/thread-self/ns/net");
  if (fstat(fd, &self_ns.st) != 0) {
    e->Set("fstat", "/proc/thread-self/ns/net");
    close(fd);
    return false;
  }
  self_ns.fd = fd;
  return true;
}

// Like InNetns, with the target namespace already open (an fd the caller keeps per pod).
template <typename Fn>
bool InNetnsFd(int target, const std::string& what, SysErr* e, Fn fn) {
  if (!SelfNetns(e)) return false;
  struct stat st_target {};
  if (fstat(target, &st_target) != 0) return e->Set("fstat", what);
  if (st_target.st_dev == self_ns.st.st_dev && st_target.st_ino == self_ns.st.st_ino) return fn(e);
  if (setns(target, CLONE_NEWNET) != 0) return e->Set("setns", what);
  bool ok = fn(e);
  int saved = errno;
  if (setns(self_ns.fd, CLONE_NEWNET) != 0) {
    fprintf(stderr, "nodemesh native: FATAL: cannot return to the original network namespace after entering %s: %s\n",
            what.c_str(), strerror(errno));
    abort();
  }
  errno = saved;
  return ok;
}

bool SetOpt(int fd, int level, int name, int value, const char* what, SysErr* e) {
  if (setsockopt(fd, level, name, &value, sizeof(value)) != 0) return e->Set("setsockopt", what);
  return true;
}

bool MakeSocket(int family, const std::string& bind_addr, int port, uint32_t mark, int backlog, int flags, int* out,
                SysErr* e) {
  int fd = socket(family == 4 ? AF_INET : AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return e->Set("socket", family == 4 ? "AF_INET" : "AF_INET6");
  bool ok = true;
  if (ok && mark != 0) ok = SetOpt(fd, SOL_SOCKET, SO_MARK, static_cast<int>(mark), "SO_MARK", e);
  if (ok && (flags & kFlagReuseAddr)) ok = SetOpt(fd, SOL_SOCKET, SO_REUSEADDR, 1, "SO_REUSEADDR", e);
  if (ok && (flags & kFlagReusePort)) ok = SetOpt(fd, SOL_SOCKET, SO_REUSEPORT, 1, "SO_REUSEPORT", e);
  if (ok && (flags & kFlagFreebind))
    ok = family == 4 ? SetOpt(fd, IPPROTO_IP, IP_FREEBIND, 1, "IP_FREEBIND", e)
                     : SetOpt(fd, IPPROTO_IPV6, IPV6_FREEBIND, 1, "IPV6_FREEBIND", e);
  if (ok && (flags & kFlagTransparent))
    ok = family == 4 ? SetOpt(fd, IPPROTO_IP, IP_TRANSPARENT, 1, "IP_TRANSPARENT", e)
                     : SetOpt(fd, IPPROTO_IPV6, IPV6_TRANSPARENT, 1, "IPV6_TRANSPARENT", e);
  // Explicit either way, so the namespace's net.ipv6.bindv6only does not decide for us.
  if (ok && family == 6) ok = SetOpt(fd, IPPROTO_IPV6, IPV6_V6ONLY, (flags & kFlagV6Only) ? 1 : 0, "IPV6_V6ONLY", e);
  if (ok && !bind_addr.empty()) {
    sockaddr_storage ss{};
    socklen_t len;
    if (family == 4) {
      auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
      sin->sin_family = AF_INET;
      sin->sin_port = htons(static_cast<uint16_t>(port));
      inet_pton(AF_INET, bind_addr.c_str(), &sin->sin_addr);  // validated by the caller
      len = sizeof(*sin);
    } else {
      auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
      sin6->sin6_family = AF_INET6;
      sin6->sin6_port = htons(static_cast<uint16_t>(port));
      inet_pton(AF_INET6, bind_addr.c_str(), &sin6->sin6_addr);
      len = sizeof(*sin6);
    }
    if (bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0)
      ok = e->Set("bind", bind_addr + " port " + std::to_string(port));
  }
  if (ok && backlog >= 0 && listen(fd, backlog) != 0) ok = e->Set("listen", bind_addr + " port " + std::to_string(port));
  if (!ok) {
    int saved = errno;
    close(fd);
    errno = saved;
    return false;
  }
  *out = fd;
  return true;
}

constexpr const char* kSocketUsage =
    "socketInNetns(netnsPath: string, family: 4 | 6, bindAddress: string, bindPort: number, mark: number, "
    "backlog: number, flags: number): number  (flags: 1 SO_REUSEADDR, 2 IP_FREEBIND, 4 IPV6_V6ONLY, 8 IP_TRANSPARENT, 16 SO_REUSEPORT)";
constexpr const char* kSocketFdUsage =
    "socketInNetnsFd(netnsFd: number, family: 4 | 6, bindAddress: string, bindPort: number, mark: number, "
    "backlog: number, flags: number): number  (flags: 1 SO_REUSEADDR, 2 IP_FREEBIND, 4 IPV6_V6ONLY, 8 IP_TRANSPARENT, 16 SO_REUSEPORT)";

struct SocketArgs {
  std::string addr;
  int64_t family, port, mark, backlog, flags;
};

// Arguments 1..6 of socketInNetns / socketInNetnsFd (argument 0 names the namespace).
bool ParseSocketArgs(const Napi::CallbackInfo& info, const char* fn, const char* usage, SocketArgs* a) {
  Napi::Env env = info.Env();
  if (!ArgInt(info, 1, 4, 6, &a->family, usage) || !ArgString(info, 2, &a->addr, usage) ||
      !ArgInt(info, 3, 0, 65535, &a->port, usage) || !ArgInt(info, 4, 0, UINT32_MAX, &a->mark, usage) ||
      !ArgInt(info, 5, INT32_MIN, INT32_MAX, &a->backlog, usage) || !ArgInt(info, 6, 0, kFlagsAll, &a->flags, usage))
    return false;
  if (a->family != 4 && a->family != 6) {
    ThrowType(env, usage);
    return false;
  }
  if (!a->addr.empty()) {
    unsigned char probe[sizeof(in6_addr)];
    if (inet_pton(a->family == 4 ? AF_INET : AF_INET6, a->addr.c_str(), probe) != 1) {
      Napi::TypeError::New(env, std::string(fn) + ": bindAddress " + a->addr + " is not an IPv" + std::to_string(a->family) +
                                    " address; usage: " + usage).ThrowAsJavaScriptException();
      return false;
    }
  }
  return true;
}

// Creates the socket inside the namespace open as nsfd; throws and returns undefined on failure.
Napi::Value SocketIn(Napi::Env env, int nsfd, const std::string& what, const SocketArgs& a) {
  SysErr e;
  int fd = -1;
  bool ok = InNetnsFd(nsfd, what, &e, [&](SysErr* err) {
    return MakeSocket(static_cast<int>(a.family), a.addr, static_cast<int>(a.port), static_cast<uint32_t>(a.mark),
                      static_cast<int>(a.backlog), static_cast<int>(a.flags), &fd, err);
  });
  if (!ok) {
    ThrowErrno(env, e.err, e.syscall, e.what + " in " + what);
    return env.Undefined();
  }
  return Napi::Number::New(env, fd);
}

Napi::Value SocketInNetns(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path;
  SocketArgs a;
  if (!ArgCount(info, 7, kSocketUsage) || !ArgString(info, 0, &path, kSocketUsage) ||
      !ParseSocketArgs(info, "socketInNetns", kSocketUsage, &a))
    return env.Undefined();
  int nsfd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (nsfd < 0) {
    ThrowErrno(env, errno, "open", path);
    return env.Undefined();
  }
  Napi::Value r = SocketIn(env, nsfd, path, a);
  close(nsfd);
  return r;
}

Napi::Value SocketInNetnsFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t nsfd;
  SocketArgs a;
  if (!ArgCount(info, 7, kSocketFdUsage) || !ArgInt(info, 0, 0, INT32_MAX, &nsfd, kSocketFdUsage) ||
      !ParseSocketArgs(info, "socketInNetnsFd", kSocketFdUsage, &a))
    return env.Undefined();
  return SocketIn(env, static_cast<int>(nsfd), "namespace fd " + std::to_string(nsfd), a);
}

constexpr const char* kNetnsOpenUsage = "netnsOpen(netnsPath: string): number";

Napi::Value NetnsOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path;
  if (!ArgCount(info, 1, kNetnsOpenUsage) || !ArgString(info, 0, &path, kNetnsOpenUsage)) return env.Undefined();
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    ThrowErrno(env, errno, "open", path);
    return env.Undefined();
  }
  return Napi::Number::New(env, fd);
}

bool GetU64Opt(int fd, int name, uint64_t* out) {
  socklen_t len = sizeof(*out);
  return getsockopt(fd, SOL_SOCKET, name, out, &len) == 0;
}

constexpr const char* kNetnsCookieUsage = "netnsCookie(netnsPath: string): bigint";

Napi::Value NetnsCookie(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path;
  if (!ArgCount(info, 1, kNetnsCookieUsage) || !ArgString(info, 0, &path, kNetnsCookieUsage)) return env.Undefined();
  SysErr e;
  uint64_t cookie = 0;
  bool ok = InNetns(path, &e, [&](SysErr* err) {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return err->Set("socket", "AF_INET");
    bool got = GetU64Opt(fd, SO_NETNS_COOKIE, &cookie);
    if (!got) err->Set("getsockopt", "SO_NETNS_COOKIE");
    int saved = errno;
    close(fd);
    errno = saved;
    return got;
  });
  if (!ok) {
    ThrowErrno(env, e.err, e.syscall, e.what + " in " + path);
    return env.Undefined();
  }
  return Napi::BigInt::New(env, cookie);
}

Napi::Value FdU64(const Napi::CallbackInfo& info, const char* usage, int opt, const char* opt_name) {
  Napi::Env env = info.Env();
  int64_t fd;
  if (!ArgCount(info, 1, usage) || !ArgInt(info, 0, 0, INT32_MAX, &fd, usage)) return env.Undefined();
  uint64_t v = 0;
  if (!GetU64Opt(static_cast<int>(fd), opt, &v)) {
    ThrowErrno(env, errno, "getsockopt", std::string(opt_name) + " on fd " + std::to_string(fd));
    return env.Undefined();
  }
  return Napi::BigInt::New(env, v);
}

Napi::Value SocketNetnsCookie(const Napi::CallbackInfo& info) {
  return FdU64(info, "socketNetnsCookie(fd: number): bigint", SO_NETNS_COOKIE, "SO_NETNS_COOKIE");
}

Napi::Value SocketCookie(const Napi::CallbackInfo& info) {
  return FdU64(info, "socketCookie(fd: number): bigint", SO_COOKIE, "SO_COOKIE");
}

constexpr const char* kMarkUsage = "setSocketMark(fd: number, mark: number): void";

Napi::Value SetSocketMark(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t fd, mark;
  if (!ArgCount(info, 2, kMarkUsage) || !ArgInt(info, 0, 0, INT32_MAX, &fd, kMarkUsage) ||
      !ArgInt(info, 1, 0, UINT32_MAX, &mark, kMarkUsage))
    return env.Undefined();
  uint32_t m = static_cast<uint32_t>(mark);
  if (setsockopt(static_cast<int>(fd), SOL_SOCKET, SO_MARK, &m, sizeof(m)) != 0)
    ThrowErrno(env, errno, "setsockopt", "SO_MARK on fd " + std::to_string(fd));
  return env.Undefined();
}

constexpr const char* kCloseUsage = "closeFd(fd: number): void";

Napi::Value CloseFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t fd;
  if (!ArgCount(info, 1, kCloseUsage) || !ArgInt(info, 0, 0, INT32_MAX, &fd, kCloseUsage)) return env.Undefined();
  if (close(static_cast<int>(fd)) != 0) ThrowErrno(env, errno, "close", "fd " + std::to_string(fd));
  return env.Undefined();
}

}  // namespace

void InitNetns(Napi::Env env, Napi::Object exports) {
  exports.Set("socketInNetns", Napi::Function::New(env, SocketInNetns, "socketInNetns"));
  exports.Set("socketInNetnsFd", Napi::Function::New(env, SocketInNetnsFd, "socketInNetnsFd"));
  exports.Set("netnsOpen", Napi::Function::New(env, NetnsOpen, "netnsOpen"));
  exports.Set("netnsCookie", Napi::Function::New(env, NetnsCookie, "netnsCookie"));
  exports.Set("socketNetnsCookie", Napi::Function::New(env, SocketNetnsCookie, "socketNetnsCookie"));
  exports.Set("socketCookie", Napi::Function::New(env, SocketCookie, "socketCookie"));
  exports.Set("setSocketMark", Napi::Function::New(env, SetSocketMark, "setSocketMark"));
  exports.Set("closeFd", Napi::Function::New(env, CloseFd, "closeFd"));
}

}  // namespace nodemesh
