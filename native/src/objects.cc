// bpf_object and bpf_link handles: small integers indexing tables owned by this addon.
// Single-threaded by design (the daemon's main thread); handles are never reused.
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "common.h"

namespace nodemesh {

namespace {

// Index 0 is never used, so a handle is always truthy.
std::vector<bpf_object*> g_objects{nullptr};
std::vector<bpf_link*> g_links{nullptr};

template <typename T>
T* FromHandle(const Napi::CallbackInfo& info, size_t i, std::vector<T*>& table, const char* kind, const char* usage) {
  int64_t h;
  if (!ArgInt(info, i, 1, INT32_MAX, &h, usage)) return nullptr;
  if (static_cast<size_t>(h) >= table.size() || table[h] == nullptr) {
    Napi::Error e = Napi::Error::New(info.Env(), std::string("unknown or closed ") + kind + " handle " + std::to_string(h));
    e.Value().Set("code", Napi::String::New(info.Env(), "EBADF"));
    e.ThrowAsJavaScriptException();
    return nullptr;
  }
  return table[h];
}

bpf_program* FindProgram(Napi::Env env, bpf_object* obj, const std::string& name) {
  bpf_program* prog = bpf_object__find_program_by_name(obj, name.c_str());
  if (prog == nullptr) ThrowErrno(env, ENOENT, "bpf_object__find_program_by_name", "program " + name);
  return prog;
}

Napi::Value NewLinkHandle(Napi::Env env, bpf_link* link) {
  g_links.push_back(link);
  return Napi::Number::New(env, static_cast<double>(g_links.size() - 1));
}

// --- objects -------------------------------------------------------------------------

constexpr const char* kOpenUsage = "objectOpen(path: string, pinRoot: string): number";

Napi::Value ObjectOpen(const Napi::CallbackInfo& info) {
  std::string path, pin_root;
  if (!ArgCount(info, 2, kOpenUsage) || !ArgString(info, 0, &path, kOpenUsage) ||
      !ArgString(info, 1, &pin_root, kOpenUsage))
    return info.Env().Undefined();
  LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = pin_root.empty() ? nullptr : pin_root.c_str());
  ClearLibbpfLog();
  errno = 0;
  bpf_object* obj = bpf_object__open_file(path.c_str(), &opts);
  if (obj == nullptr) {
    ThrowErrno(info.Env(), errno, "bpf_object__open_file", path);
    return info.Env().Undefined();
  }
  g_objects.push_back(obj);
  return Napi::Number::New(info.Env(), static_cast<double>(g_objects.size() - 1));
}

constexpr const char* kRodataUsage = "objectSetRodata(obj: number, varName: string, value: Buffer): void";

// Finds `name` in the object's .rodata DATASEC (offsets are final once the object is open).
bool FindRodataVar(bpf_object* obj, const std::string& name, uint32_t* off, uint32_t* size) {
  const btf* b = bpf_object__btf(obj);
  if (b == nullptr) return false;
  uint32_t n = btf__type_cnt(b);
  for (uint32_t id = 1; id < n; id++) {
    const btf_type* t = btf__type_by_id(b, id);
    if (!btf_is_datasec(t) || strcmp(btf__name_by_offset(b, t->name_off), ".rodata") != 0) continue;
    const btf_var_secinfo* vs = btf_var_secinfos(t);
    for (uint16_t i = 0; i < btf_vlen(t); i++, vs++) {
      const btf_type* var = btf__type_by_id(b, vs->type);
      if (strcmp(btf__name_by_offset(b, var->name_off), name.c_str()) == 0) {
        *off = vs->offset;
        *size = vs->size;
        return true;
      }
    }
  }
  return false;
}

bpf_map* FindRodataMap(bpf_object* obj) {
  bpf_map* m;
  bpf_object__for_each_map(m, obj) {
    const char* n = bpf_map__name(m);
    size_t len = strlen(n);
    if (bpf_map__is_internal(m) && len >= 7 && strcmp(n + len - 7, ".rodata") == 0) return m;
  }
  return nullptr;
}

Napi::Value ObjectSetRodata(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string var;
  Napi::Buffer<uint8_t> value;
  if (!ArgCount(info, 3, kRodataUsage)) return env.Undefined();
  bpf_object* obj = FromHandle(info, 0, g_objects, "object", kRodataUsage);
  if (obj == nullptr || !ArgString(info, 1, &var, kRodataUsage) || !ArgBuffer(info, 2, &value, kRodataUsage))
    return env.Undefined();
  uint32_t off = 0, size = 0;
  bpf_map* map = FindRodataMap(obj);
  if (map == nullptr || !FindRodataVar(obj, var, &off, &size)) {
    ThrowErrno(env, ENOENT, "objectSetRodata", "no const volatile variable " + var + " in .rodata");
    return env.Undefined();
  }
  if (value.Length() != size) {
    Napi::RangeError::New(env, "objectSetRodata: " + var + " is " + std::to_string(size) + " bytes, got " +
                                   std::to_string(value.Length())).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  size_t total = 0;
  const void* init = bpf_map__initial_value(map, &total);
  if (init == nullptr || off + size > total) {
    ThrowErrno(env, EINVAL, "bpf_map__initial_value", ".rodata of the object");
    return env.Undefined();
  }
  std::vector<uint8_t> data(static_cast<const uint8_t*>(init), static_cast<const uint8_t*>(init) + total);
  memcpy(data.data() + off, value.Data(), size);
  ClearLibbpfLog();
  int err = bpf_map__set_initial_value(map, data.data(), data.size());
  if (err != 0) ThrowErrno(env, err, "bpf_map__set_initial_value", var + " (set rodata before objectLoad)");
  return env.Undefined();
}

constexpr const char* kLoadUsage = "objectLoad(obj: number): void";

Napi::Value ObjectLoad(const Napi::CallbackInfo& info) {
  if (!ArgCount(info, 1, kLoadUsage)) return info.Env().Undefined();
  bpf_object* obj = FromHandle(info, 0, g_objects, "object", kLoadUsage);
  if (obj == nullptr) return info.Env().Undefined();
  ClearLibbpfLog();
  int err = bpf_object__load(obj);
  if (err != 0) ThrowErrno(info.Env(), err, "bpf_object__load", bpf_object__name(obj));
  return info.Env().Undefined();
}

constexpr const char* kCloseUsage = "objectClose(obj: number): void";

Napi::Value ObjectClose(const Napi::CallbackInfo& info) {
  if (!ArgCount(info, 1, kCloseUsage)) return info.Env().Undefined();
  bpf_object* obj = FromHandle(info, 0, g_objects, "object", kCloseUsage);
  if (obj == nullptr) return info.Env().Undefined();
  int64_t h = info[0].As<Napi::Number>().Int64Value();
  bpf_object__close(obj);
  g_objects[h] = nullptr;
  return info.Env().Undefined();
}

constexpr const char* kMapFdUsage = "objectMapFd(obj: number, mapName: string): number";

Napi::Value ObjectMapFd(const Napi::CallbackInfo& info) {
  std::string name;
  if (!ArgCount(info, 2, kMapFdUsage)) return info.Env().Undefined();
  bpf_object* obj = FromHandle(info, 0, g_objects, "object", kMapFdUsage);
  if (obj == nullptr || !ArgString(info, 1, &name, kMapFdUsage)) return info.Env().Undefined();
  bpf_map* map = bpf_object__find_map_by_name(obj, name.c_str());
  if (map == nullptr) {
    ThrowErrno(info.Env(), ENOENT, "bpf_object__find_map_by_name", "map " + name);
    return info.Env().Undefined();
  }
  int fd = bpf_map__fd(map);
  if (fd < 0) {
    ThrowErrno(info.Env(), EBADF, "bpf_map__fd", "map " + name + " (object not loaded?)");
    return info.Env().Undefined();
  }
  return Napi::Number::New(info.Env(), fd);
}

// --- links ---------------------------------------------------------------------------

Napi::Value AttachTo(const Napi::CallbackInfo& info, const char* usage, bool netns) {
  Napi::Env env = info.Env();
  std::string prog_name, target;
  if (!ArgCount(info, 3, usage)) return env.Undefined();
  bpf_object* obj = FromHandle(info, 0, g_objects, "object", usage);
  if (obj == nullptr || !ArgString(info, 1, &prog_name, usage) || !ArgString(info, 2, &target, usage))
    return env.Undefined();
  bpf_program* prog = FindProgram(env, obj, prog_name);
  if (prog == nullptr) return env.Undefined();
  int fd = open(target.c_str(), O_RDONLY | O_CLOEXEC | (netns ? 0 : O_DIRECTORY));
  if (fd < 0) {
    ThrowErrno(env, errno, "open", target);
    return env.Undefined();
  }
  ClearLibbpfLog();
  errno = 0;
  bpf_link* link = netns ? bpf_program__attach_netns(prog, fd) : bpf_program__attach_cgroup(prog, fd);
  int err = errno;
  close(fd);  // the link holds its own reference to the cgroup / namespace
  if (link == nullptr) {
    ThrowErrno(env, err, netns ? "bpf_program__attach_netns" : "bpf_program__attach_cgroup", prog_name + " -> " + target);
    return env.Undefined();
  }
  return NewLinkHandle(env, link);
}

constexpr const char* kAttachCgroupUsage = "attachCgroup(obj: number, progName: string, cgroupPath: string): number";
constexpr const char* kAttachNetnsUsage = "attachNetns(obj: number, progName: string, netnsPath: string): number";

Napi::Value AttachCgroup(const Napi::CallbackInfo& info) { return AttachTo(info, kAttachCgroupUsage, false); }
Napi::Value AttachNetns(const Napi::CallbackInfo& info) { return AttachTo(info, kAttachNetnsUsage, true); }

constexpr const char* kAttachSockmapUsage = "attachSockmap(obj: number, progName: string, mapFd: number): void";

// bpf_prog_attach(prog, map, BPF_SK_SKB_VERDICT): the stream verdict program of a SOCKMAP or
// SOCKHASH. Not a link: the map holds the program for as long as the map lives.
Napi::Value AttachSockmap(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string prog_name;
  int64_t map_fd;
  if (!ArgCount(info, 3, kAttachSockmapUsage)) return env.Undefined();
  bpf_object* obj = FromHandle(info, 0, g_objects, "object", kAttachSockmapUsage);
  if (obj == nullptr || !ArgString(info, 1, &prog_name, kAttachSockmapUsage) ||
      !ArgInt(info, 2, 0, INT32_MAX, &map_fd, kAttachSockmapUsage))
    return env.Undefined();
  bpf_program* prog = FindProgram(env, obj, prog_name);
  if (prog == nullptr) return env.Undefined();
  ClearLibbpfLog();
  if (bpf_prog_attach(bpf_program__fd(prog), static_cast<int>(map_fd), BPF_SK_SKB_VERDICT, 0) != 0)
    ThrowErrno(env, errno, "bpf_prog_attach", prog_name + " -> map fd " + std::to_string(map_fd) + " (BPF_SK_SKB_VERDICT)");
  return env.Undefined();
}

constexpr const char* kLinkOpenUsage = "linkOpenPinned(path: string): number";

Napi::Value LinkOpenPinned(const Napi::CallbackInfo& info) {
  std::string path;
  if (!ArgCount(info, 1, kLinkOpenUsage) || !ArgString(info, 0, &path, kLinkOpenUsage)) return info.Env().Undefined();
  ClearLibbpfLog();
  errno = 0;
  bpf_link* link = bpf_link__open(path.c_str());
  if (link == nullptr) {
    ThrowErrno(info.Env(), errno, "bpf_link__open", path);
    return info.Env().Undefined();
  }
  return NewLinkHandle(info.Env(), link);
}

constexpr const char* kLinkUpdateUsage = "linkUpdateProgram(link: number, obj: number, progName: string): void";

Napi::Value LinkUpdateProgram(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string prog_name;
  if (!ArgCount(info, 3, kLinkUpdateUsage)) return env.Undefined();
  bpf_link* link = FromHandle(info, 0, g_links, "link", kLinkUpdateUsage);
  if (link == nullptr) return env.Undefined();
  bpf_object* obj = FromHandle(info, 1, g_objects, "object", kLinkUpdateUsage);
  if (obj == nullptr || !ArgString(info, 2, &prog_name, kLinkUpdateUsage)) return env.Undefined();
  bpf_program* prog = FindProgram(env, obj, prog_name);
  if (prog == nullptr) return env.Undefined();
  ClearLibbpfLog();
  int err = bpf_link__update_program(link, prog);
  if (err != 0) ThrowErrno(env, err, "bpf_link__update_program", prog_name);
  return env.Undefined();
}

constexpr const char* kLinkPinUsage = "linkPin(link: number, path: string): void";

Napi::Value LinkPin(const Napi::CallbackInfo& info) {
  std::string path;
  if (!ArgCount(info, 2, kLinkPinUsage)) return info.Env().Undefined();
  bpf_link* link = FromHandle(info, 0, g_links, "link", kLinkPinUsage);
  if (link == nullptr || !ArgString(info, 1, &path, kLinkPinUsage)) return info.Env().Undefined();
  ClearLibbpfLog();
  int err = bpf_link__pin(link, path.c_str());
  if (err != 0) ThrowErrno(info.Env(), err, "bpf_link__pin", path);
  return info.Env().Undefined();
}

Napi::Value LinkSimple(const Napi::CallbackInfo& info, const char* usage, int (*fn)(bpf_link*), const char* syscall) {
  if (!ArgCount(info, 1, usage)) return info.Env().Undefined();
  bpf_link* link = FromHandle(info, 0, g_links, "link", usage);
  if (link == nullptr) return info.Env().Undefined();
  ClearLibbpfLog();
  int err = fn(link);
  if (err != 0) ThrowErrno(info.Env(), err, syscall, "link " + std::to_string(info[0].As<Napi::Number>().Int64Value()));
  return info.Env().Undefined();
}

Napi::Value LinkUnpin(const Napi::CallbackInfo& info) {
  return LinkSimple(info, "linkUnpin(link: number): void", bpf_link__unpin, "bpf_link__unpin");
}

Napi::Value LinkDetach(const Napi::CallbackInfo& info) {
  return LinkSimple(info, "linkDetach(link: number): void", bpf_link__detach, "bpf_link__detach");
}

constexpr const char* kLinkCloseUsage = "linkClose(link: number): void";

Napi::Value LinkClose(const Napi::CallbackInfo& info) {
  if (!ArgCount(info, 1, kLinkCloseUsage)) return info.Env().Undefined();
  bpf_link* link = FromHandle(info, 0, g_links, "link", kLinkCloseUsage);
  if (link == nullptr) return info.Env().Undefined();
  int64_t h = info[0].As<Napi::Number>().Int64Value();
  // Only drops our fd: a pinned link stays attached through its pin.
  bpf_link__destroy(link);
  g_links[h] = nullptr;
  return info.Env().Undefined();
}

}  // namespace

void InitObjects(Napi::Env env, Napi::Object exports) {
  exports.Set("objectOpen", Napi::Function::New(env, ObjectOpen, "objectOpen"));
  exports.Set("objectSetRodata", Napi::Function::New(env, ObjectSetRodata, "objectSetRodata"));
  exports.Set("objectLoad", Napi::Function::New(env, ObjectLoad, "objectLoad"));
  exports.Set("objectClose", Napi::Function::New(env, ObjectClose, "objectClose"));
  exports.Set("objectMapFd", Napi::Function::New(env, ObjectMapFd, "objectMapFd"));
  exports.Set("attachCgroup", Napi::Function::New(env, AttachCgroup, "attachCgroup"));
  exports.Set("attachNetns", Napi::Function::New(env, AttachNetns, "attachNetns"));
  exports.Set("attachSockmap", Napi::Function::New(env, AttachSockmap, "attachSockmap"));
  exports.Set("linkOpenPinned", Napi::Function::New(env, LinkOpenPinned, "linkOpenPinned"));
  exports.Set("linkUpdateProgram", Napi::Function::New(env, LinkUpdateProgram, "linkUpdateProgram"));
  exports.Set("linkPin", Napi::Function::New(env, LinkPin, "linkPin"));
  exports.Set("linkUnpin", Napi::Function::New(env, LinkUnpin, "linkUnpin"));
  exports.Set("linkDetach", Napi::Function::New(env, LinkDetach, "linkDetach"));
  exports.Set("linkClose", Napi::Function::New(env, LinkClose, "linkClose"));
}

}  // namespace nodemesh
