#include "common.h"

#include <bpf/libbpf.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <string>

namespace nodemesh {

namespace {

std::string g_libbpf_log;
constexpr size_t kLogKeep = 64 * 1024;

int LibbpfPrint(enum libbpf_print_level level, const char* fmt, va_list args) {
  if (level == LIBBPF_DEBUG) return 0;
  va_list copy;
  va_copy(copy, args);
  int n = vsnprintf(nullptr, 0, fmt, copy);
  va_end(copy);
  if (n <= 0) return 0;
  std::string msg(static_cast<size_t>(n) + 1, '\0');
  vsnprintf(msg.data(), msg.size(), fmt, args);
  msg.resize(static_cast<size_t>(n));
  g_libbpf_log += msg;
  if (g_libbpf_log.size() > kLogKeep) g_libbpf_log.erase(0, g_libbpf_log.size() - kLogKeep);
  return n;
}

std::string ErrnoName(int err) {
  const char* name = strerrorname_np(err);
  if (name != nullptr) return name;
  return "E" + std::to_string(err);
}

}  // namespace

void InstallLibbpfLogger() { libbpf_set_print(LibbpfPrint); }
void ClearLibbpfLog() { g_libbpf_log.clear(); }

std::string LibbpfLogTail(size_t max_chars) {
  if (g_libbpf_log.size() <= max_chars) return g_libbpf_log;
  return "..." + g_libbpf_log.substr(g_libbpf_log.size() - max_chars);
}

void ThrowErrno(Napi::Env env, int err, const char* syscall, const std::string& what) {
  if (err < 0) err = -err;
  if (err == 0) err = EIO;  // a failure without errno: never report success-looking codes
  std::string msg = std::string(syscall) + " " + what + ": " + strerror(err) + " (" + ErrnoName(err) + ")";
  std::string log = LibbpfLogTail(6000);
  if (!log.empty()) msg += "\n" + log;
  Napi::Error e = Napi::Error::New(env, msg);
  e.Value().Set("code", Napi::String::New(env, ErrnoName(err)));
  e.Value().Set("errno", Napi::Number::New(env, -err));
  e.Value().Set("syscall", Napi::String::New(env, syscall));
  if (!log.empty()) e.Value().Set("libbpfLog", Napi::String::New(env, LibbpfLogTail(kLogKeep)));
  e.ThrowAsJavaScriptException();
}

void ThrowType(Napi::Env env, const char* usage) {
  Napi::TypeError::New(env, std::string("usage: ") + usage).ThrowAsJavaScriptException();
}

// Every entry point starts here, so a libbpf message never outlives the call that caused it.
bool ArgCount(const Napi::CallbackInfo& info, size_t n, const char* usage) {
  ClearLibbpfLog();
  if (info.Length() != n) {
    ThrowType(info.Env(), usage);
    return false;
  }
  return true;
}

bool ArgString(const Napi::CallbackInfo& info, size_t i, std::string* out, const char* usage) {
  if (i >= info.Length() || !info[i].IsString()) {
    ThrowType(info.Env(), usage);
    return false;
  }
  *out = info[i].As<Napi::String>().Utf8Value();
  if (out->find('\0') != std::string::npos) {
    ThrowType(info.Env(), usage);
    return false;
  }
  return true;
}

bool ArgInt(const Napi::CallbackInfo& info, size_t i, int64_t min, int64_t max, int64_t* out, const char* usage) {
  if (i >= info.Length() || !info[i].IsNumber()) {
    ThrowType(info.Env(), usage);
    return false;
  }
  double d = info[i].As<Napi::Number>().DoubleValue();
  if (!(d >= static_cast<double>(min) && d <= static_cast<double>(max)) || d != static_cast<double>(static_cast<int64_t>(d))) {
    ThrowType(info.Env(), usage);
    return false;
  }
  *out = static_cast<int64_t>(d);
  return true;
}

bool ArgBuffer(const Napi::CallbackInfo& info, size_t i, Napi::Buffer<uint8_t>* out, const char* usage) {
  if (i >= info.Length() || !info[i].IsBuffer()) {
    ThrowType(info.Env(), usage);
    return false;
  }
  *out = info[i].As<Napi::Buffer<uint8_t>>();
  return true;
}

bool ArgBufferOrNull(const Napi::CallbackInfo& info, size_t i, Napi::Buffer<uint8_t>* out, bool* is_null,
                     const char* usage) {
  if (i < info.Length() && info[i].IsNull()) {
    *is_null = true;
    return true;
  }
  *is_null = false;
  return ArgBuffer(info, i, out, usage);
}

}  // namespace nodemesh
