// Per-namespace sysctls of a pod's network namespace (/proc/sys/net shows the namespace of the
// thread that opens the file): setns there, open, setns back, then write, all on the calling
// thread in one synchronous call. Used for net.ipv4.tcp_migrate_req, which a hitless restart
// needs in every enrolled pod's namespace. Like netns.cc, the thread never stays in the pod's
// namespace: if returning fails, abort.
#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "common.h"

namespace nodemesh {

namespace {

constexpr const char* kUsage =
    "writeNetSysctlInNetns(netnsPath: string, name: string, value: string): void  "
    "(name under /proc/sys/net, e.g. 'ipv4/tcp_migrate_req')";

bool ValidName(const std::string& n) {
  if (n.empty() || n.size() > 128 || n.front() == '/' || n.find("..") != std::string::npos) return false;
  for (char c : n) {
    if (!(c >= 'a' && c <= 'z') && !(c >= '0' && c <= '9') && c != '_' && c != '/' && c != '.' && c != '-') return false;
  }
  return true;
}

// Opens /proc/sys/net/<name> for writing as seen from the namespace at path; returns the fd or
// -1 with *err and *syscall set.
int OpenInNetns(const std::string& path, const std::string& file, int* err, const char** syscall) {
  int self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (self < 0) { *err = errno; *syscall = "open"; return -1; }
  int target = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (target < 0) { *err = errno; *syscall = "open"; close(self); return -1; }
  if (setns(target, CLONE_NEWNET) != 0) {
    *err = errno; *syscall = "setns";
    close(target); close(self);
    return -1;
  }
  close(target);
  int fd = open(file.c_str(), O_WRONLY | O_CLOEXEC);
  int saved = errno;
  if (setns(self, CLONE_NEWNET) != 0) {
    fprintf(stderr, "nodemesh native: FATAL: cannot return to the original network namespace after entering %s: %s\n",
            path.c_str(), strerror(errno));
    abort();
  }
  close(self);
  if (fd < 0) { *err = saved; *syscall = "open"; }
  return fd;
}

Napi::Value WriteNetSysctlInNetns(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path, name, value;
  if (!ArgCount(info, 3, kUsage) || !ArgString(info, 0, &path, kUsage) || !ArgString(info, 1, &name, kUsage) ||
      !ArgString(info, 2, &value, kUsage))
    return env.Undefined();
  if (!ValidName(name) || value.empty() || value.size() > 64) {
    ThrowType(env, kUsage);
    return env.Undefined();
  }
  const std::string file = "/proc/sys/net/" + name;
  int err = 0;
  const char* syscall = nullptr;
  int fd = OpenInNetns(path, file, &err, &syscall);
  if (fd < 0) {
    ThrowErrno(env, err, syscall, file + " in " + path);
    return env.Undefined();
  }
  ssize_t n = write(fd, value.data(), value.size());
  int werr = errno;
  close(fd);
  if (n != static_cast<ssize_t>(value.size())) {
    ThrowErrno(env, n < 0 ? werr : EIO, "write", file + " in " + path);
    return env.Undefined();
  }
  return env.Undefined();
}

}  // namespace

void InitNetnsSysctl(Napi::Env env, Napi::Object exports) {
  exports.Set("writeNetSysctlInNetns", Napi::Function::New(env, WriteNetSysctlInNetns, "writeNetSysctlInNetns"));
}

}  // namespace nodemesh
