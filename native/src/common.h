// Shared helpers of the nodemesh addon: argument checks that throw TypeError with usage
// text, and errno errors shaped like Node's own ({code, errno, syscall}).
#pragma once

#include <napi.h>

#include <cstdint>
#include <string>

namespace nodemesh {

// Throws Error{code: errno name, errno: -err, syscall} with a message that says what failed
// (and the tail of libbpf's log, if libbpf said anything during the call).
void ThrowErrno(Napi::Env env, int err, const char* syscall, const std::string& what);
void ThrowType(Napi::Env env, const char* usage);

// libbpf log capture: cleared before each libbpf call, appended to on failure.
void InstallLibbpfLogger();
void ClearLibbpfLog();
std::string LibbpfLogTail(size_t max_chars);

// Argument readers: return false after throwing a TypeError with `usage`.
bool ArgCount(const Napi::CallbackInfo& info, size_t n, const char* usage);
bool ArgString(const Napi::CallbackInfo& info, size_t i, std::string* out, const char* usage);
bool ArgInt(const Napi::CallbackInfo& info, size_t i, int64_t min, int64_t max, int64_t* out, const char* usage);
bool ArgBuffer(const Napi::CallbackInfo& info, size_t i, Napi::Buffer<uint8_t>* out, const char* usage);
// A Buffer or null (out->IsEmpty() stays true for null).
bool ArgBufferOrNull(const Napi::CallbackInfo& info, size_t i, Napi::Buffer<uint8_t>* out, bool* is_null,
                     const char* usage);

void InitObjects(Napi::Env env, Napi::Object exports);
void InitMaps(Napi::Env env, Napi::Object exports);
void InitNetns(Napi::Env env, Napi::Object exports);
void InitNetnsSysctl(Napi::Env env, Napi::Object exports);
void InitMemory(Napi::Env env, Napi::Object exports);
void InitSplice(Napi::Env env, Napi::Object exports);

}  // namespace nodemesh
