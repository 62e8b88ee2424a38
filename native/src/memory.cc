// Giving memory back to the system after a burst of connections closed. V8 keeps the heap
// pages (and a grown young generation) it no longer needs, and glibc keeps freed native
// allocations (sockets, nghttp2 streams), so a daemon that once held 10,000 connections
// stays that large. A critical memory-pressure notification makes V8 collect fully and
// release what it can; malloc_trim then returns glibc's free pages. Both are synchronous
// (a full GC: tens of milliseconds on a large heap), so the daemon calls this rarely: after
// most of its connections closed (daemon/proxy/memory-release.ts).
#include <malloc.h>
#include <v8.h>

#include "common.h"

namespace {

Napi::Value ReleaseMemory(const Napi::CallbackInfo& info) {
  v8::Isolate* isolate = v8::Isolate::GetCurrent();
  if (isolate != nullptr) isolate->MemoryPressureNotification(v8::MemoryPressureLevel::kCritical);
  malloc_trim(0);
  return info.Env().Undefined();
}

}  // namespace

namespace nodemesh {

void InitMemory(Napi::Env env, Napi::Object exports) {
  exports.Set("releaseMemory", Napi::Function::New(env, ReleaseMemory, "releaseMemory"));
}

}  // namespace nodemesh
