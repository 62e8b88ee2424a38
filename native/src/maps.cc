// Map access by fd. Key and value sizes are checked against the map's own info before the
// kernel reads or writes our buffers, so a wrong-size Buffer is an error, never a silent
// read past its end.
#include <bpf/bpf.h>
#include <linux/bpf.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "common.h"

namespace nodemesh {

namespace {

bool MapInfo(Napi::Env env, int fd, bpf_map_info* out) {
  memset(out, 0, sizeof(*out));
  __u32 len = sizeof(*out);
  if (bpf_obj_get_info_by_fd(fd, out, &len) != 0) {
    ThrowErrno(env, errno, "bpf_obj_get_info_by_fd", "fd " + std::to_string(fd) + " (not a BPF map?)");
    return false;
  }
  return true;
}

bool CheckSize(Napi::Env env, const char* what, size_t got, uint32_t want, const std::string& map_name) {
  if (got == want) return true;
  Napi::RangeError::New(env, std::string(what) + " of map " + map_name + " is " + std::to_string(want) +
                                 " bytes, got " + std::to_string(got)).ThrowAsJavaScriptException();
  return false;
}

bool ArgMapFd(const Napi::CallbackInfo& info, size_t i, int* fd, const char* usage) {
  int64_t v;
  if (!ArgInt(info, i, 0, INT32_MAX, &v, usage)) return false;
  *fd = static_cast<int>(v);
  return true;
}

constexpr const char* kOpenUsage = "mapOpenPinned(path: string): number";

Napi::Value MapOpenPinned(const Napi::CallbackInfo& info) {
  std::string path;
  if (!ArgCount(info, 1, kOpenUsage) || !ArgString(info, 0, &path, kOpenUsage)) return info.Env().Undefined();
  int fd = bpf_obj_get(path.c_str());
  if (fd < 0) {
    ThrowErrno(info.Env(), errno, "bpf_obj_get", path);
    return info.Env().Undefined();
  }
  return Napi::Number::New(info.Env(), fd);
}

constexpr const char* kUpdateUsage = "mapUpdate(fd: number, key: Buffer, value: Buffer, flags: number): void";

Napi::Value MapUpdate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  int64_t flags;
  Napi::Buffer<uint8_t> key, value;
  bpf_map_info mi;
  if (!ArgCount(info, 4, kUpdateUsage) || !ArgMapFd(info, 0, &fd, kUpdateUsage) ||
      !ArgBuffer(info, 1, &key, kUpdateUsage) || !ArgBuffer(info, 2, &value, kUpdateUsage) ||
      !ArgInt(info, 3, 0, UINT32_MAX, &flags, kUpdateUsage) || !MapInfo(env, fd, &mi) ||
      !CheckSize(env, "key", key.Length(), mi.key_size, mi.name) ||
      !CheckSize(env, "value", value.Length(), mi.value_size, mi.name))
    return env.Undefined();
  if (bpf_map_update_elem(fd, key.Data(), value.Data(), static_cast<__u64>(flags)) != 0)
    ThrowErrno(env, errno, "bpf_map_update_elem", std::string("map ") + mi.name);
  return env.Undefined();
}

Napi::Value Lookup(const Napi::CallbackInfo& info, const char* usage, bool and_delete) {
  Napi::Env env = info.Env();
  int fd;
  int64_t value_size;
  Napi::Buffer<uint8_t> key;
  bpf_map_info mi;
  if (!ArgCount(info, 3, usage) || !ArgMapFd(info, 0, &fd, usage) || !ArgBuffer(info, 1, &key, usage) ||
      !ArgInt(info, 2, 0, 1 << 20, &value_size, usage) || !MapInfo(env, fd, &mi) ||
      !CheckSize(env, "key", key.Length(), mi.key_size, mi.name) ||
      !CheckSize(env, "value", static_cast<size_t>(value_size), mi.value_size, mi.name))
    return env.Undefined();
  Napi::Buffer<uint8_t> out = Napi::Buffer<uint8_t>::New(env, static_cast<size_t>(value_size));
  memset(out.Data(), 0, out.Length());
  if (!and_delete) {
    if (bpf_map_lookup_elem(fd, key.Data(), out.Data()) != 0) {
      if (errno == ENOENT) return env.Null();
      ThrowErrno(env, errno, "bpf_map_lookup_elem", std::string("map ") + mi.name);
      return env.Undefined();
    }
    return out;
  }
  if (bpf_map_lookup_and_delete_elem(fd, key.Data(), out.Data()) == 0) return out;
  if (errno == ENOENT) return env.Null();
  if (errno != EINVAL && errno != ENOTSUP && errno != EOPNOTSUPP && errno != 524 /* ENOTSUPP */) {
    ThrowErrno(env, errno, "bpf_map_lookup_and_delete_elem", std::string("map ") + mi.name);
    return env.Undefined();
  }
  // Map type without LOOKUP_AND_DELETE: lookup, then delete (racy, but only one reader).
  if (bpf_map_lookup_elem(fd, key.Data(), out.Data()) != 0) {
    if (errno == ENOENT) return env.Null();
    ThrowErrno(env, errno, "bpf_map_lookup_elem", std::string("map ") + mi.name);
    return env.Undefined();
  }
  if (bpf_map_delete_elem(fd, key.Data()) != 0 && errno != ENOENT) {
    ThrowErrno(env, errno, "bpf_map_delete_elem", std::string("map ") + mi.name);
    return env.Undefined();
  }
  return out;
}

Napi::Value MapLookup(const Napi::CallbackInfo& info) {
  return Lookup(info, "mapLookup(fd: number, key: Buffer, valueSize: number): Buffer | null", false);
}

Napi::Value MapLookupAndDelete(const Napi::CallbackInfo& info) {
  return Lookup(info, "mapLookupAndDelete(fd: number, key: Buffer, valueSize: number): Buffer | null", true);
}

constexpr const char* kDeleteUsage = "mapDelete(fd: number, key: Buffer): boolean";

Napi::Value MapDelete(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  Napi::Buffer<uint8_t> key;
  bpf_map_info mi;
  if (!ArgCount(info, 2, kDeleteUsage) || !ArgMapFd(info, 0, &fd, kDeleteUsage) ||
      !ArgBuffer(info, 1, &key, kDeleteUsage) || !MapInfo(env, fd, &mi) ||
      !CheckSize(env, "key", key.Length(), mi.key_size, mi.name))
    return env.Undefined();
  if (bpf_map_delete_elem(fd, key.Data()) == 0) return Napi::Boolean::New(env, true);
  if (errno == ENOENT) return Napi::Boolean::New(env, false);
  ThrowErrno(env, errno, "bpf_map_delete_elem", std::string("map ") + mi.name);
  return env.Undefined();
}

constexpr const char* kNextUsage = "mapNextKey(fd: number, key: Buffer | null, keySize: number): Buffer | null";

Napi::Value MapNextKey(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  int64_t key_size;
  bool is_null = false;
  Napi::Buffer<uint8_t> key;
  bpf_map_info mi;
  if (!ArgCount(info, 3, kNextUsage) || !ArgMapFd(info, 0, &fd, kNextUsage) ||
      !ArgBufferOrNull(info, 1, &key, &is_null, kNextUsage) || !ArgInt(info, 2, 0, 1 << 20, &key_size, kNextUsage) ||
      !MapInfo(env, fd, &mi) || !CheckSize(env, "key", static_cast<size_t>(key_size), mi.key_size, mi.name) ||
      (!is_null && !CheckSize(env, "key", key.Length(), mi.key_size, mi.name)))
    return env.Undefined();
  Napi::Buffer<uint8_t> next = Napi::Buffer<uint8_t>::New(env, static_cast<size_t>(key_size));
  if (bpf_map_get_next_key(fd, is_null ? nullptr : key.Data(), next.Data()) == 0) return next;
  if (errno == ENOENT) return env.Null();
  ThrowErrno(env, errno, "bpf_map_get_next_key", std::string("map ") + mi.name);
  return env.Undefined();
}

}  // namespace

void InitMaps(Napi::Env env, Napi::Object exports) {
  exports.Set("mapOpenPinned", Napi::Function::New(env, MapOpenPinned, "mapOpenPinned"));
  exports.Set("mapUpdate", Napi::Function::New(env, MapUpdate, "mapUpdate"));
  exports.Set("mapLookup", Napi::Function::New(env, MapLookup, "mapLookup"));
  exports.Set("mapLookupAndDelete", Napi::Function::New(env, MapLookupAndDelete, "mapLookupAndDelete"));
  exports.Set("mapDelete", Napi::Function::New(env, MapDelete, "mapDelete"));
  exports.Set("mapNextKey", Napi::Function::New(env, MapNextKey, "mapNextKey"));
}

}  // namespace nodemesh
