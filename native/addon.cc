// rome_native: registers the exports of each kernel area; nothing else lives here. Context-aware
// (one AddonData per Node environment), so it loads in the main thread and in worker threads.
#include "napi_util.h"

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  env.SetInstanceData<rome::AddonData>(new rome::AddonData());  // freed with the environment
  rome::InitInfo(env, exports);
  rome::InitRestore(env, exports);
  rome::InitMoment(env, exports);
  rome::InitCholesky(env, exports);
  rome::InitUpdate(env, exports);
  rome::InitHeap(env, exports);
  rome::InitScan(env, exports);
  return exports;
}

NODE_API_MODULE(rome_native, Init)
