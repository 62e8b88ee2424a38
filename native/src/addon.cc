// nodemesh native addon: the syscall layer under daemon/redirection (see native.d.ts).
#include <bpf/libbpf.h>

#include <string>

#include "common.h"

namespace {

Napi::Value LibbpfVersion(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), std::to_string(libbpf_major_version()) + "." +
                                           std::to_string(libbpf_minor_version()));
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  nodemesh::InstallLibbpfLogger();
  exports.Set("libbpfVersion", Napi::Function::New(env, LibbpfVersion, "libbpfVersion"));
  nodemesh::InitObjects(env, exports);
  nodemesh::InitMaps(env, exports);
  nodemesh::InitNetns(env, exports);
  nodemesh::InitNetnsSysctl(env, exports);
  nodemesh::InitMemory(env, exports);
  nodemesh::InitSplice(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(nodemesh_native, Init)
