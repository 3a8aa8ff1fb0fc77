// N-API plumbing shared by the thin wrappers (js_*.cc): per-instance data holding the RomeError
// class handed over by lib/native.ts (one per Node environment, so worker threads each get their
// own), throwing RomeError, tensor argument unpacking ({ dims, type, data } over caller memory,
// no copies) with explicit typed-array kind checks, and the Promise-returning worker.
#pragma once
#include <napi.h>

#include <functional>
#include <string>
#include <vector>

#include "common.h"

namespace rome {

struct AddonData {
  Napi::FunctionReference rome_error;  // lib/errors.ts RomeError, set by init()
};

/** A RomeError (or, before init(), an Error with .code) carrying `code` and `message`. */
Napi::Object MakeError(Napi::Env env, const std::string& code, const std::string& message);
/** Throws MakeError(...) as a pending JS exception; returns undefined for the caller to return. */
Napi::Value Throw(Napi::Env env, const std::string& code, const std::string& message);
Napi::Object MakeError(Napi::Env env, const Status& s);  // with s.details as properties
Napi::Value ThrowStatus(Napi::Env env, const Status& s);

/** A tensor argument viewed in place. */
struct Tensor {
  void* data = nullptr;
  std::vector<int64_t> dims;
  int64_t length = 0;  // elements
  Napi::Object holder;  // the typed array, kept alive by async workers
  int64_t dim(size_t i) const { return i < dims.size() ? dims[i] : 1; }
  template <class T> T* as() const { return static_cast<T*>(data); }
};

/** Unpacks { dims, type, data } whose data is a typed array of `kind` and whose dims multiply to
 *  its length, with rank in [min_rank, max_rank]. On failure throws ERR_NATIVE_ARGUMENT, returns false. */
bool GetTensor(Napi::Env env, Napi::Value v, const char* name, napi_typedarray_type kind, size_t min_rank,
               size_t max_rank, Tensor& out);
/** A bare typed array of `kind` (index lists, plans, masks); dims = { length }. */
bool GetArray(Napi::Env env, Napi::Value v, const char* name, napi_typedarray_type kind, Tensor& out);
bool GetNumber(Napi::Env env, Napi::Value v, const char* name, double& out);
/** Throws ERR_NATIVE_ARGUMENT "<what>" unless ok; returns ok. */
bool Require(Napi::Env env, bool ok, const std::string& what);

/** Runs `run` on libuv's pool (never touching JS), then resolves with `done(env)` or rejects with a
 *  RomeError built from the Status. Keeps the given arrays alive until then. */
class PromiseWorker : public Napi::AsyncWorker {
 public:
  PromiseWorker(Napi::Env env, std::function<Status()> run, std::function<Napi::Value(Napi::Env)> done,
                const std::vector<Napi::Object>& keep);
  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Execute() override { status_ = run_(); }
  void OnOK() override;

 private:
  Napi::Promise::Deferred deferred_;
  std::function<Status()> run_;
  std::function<Napi::Value(Napi::Env)> done_;
  std::vector<Napi::ObjectReference> keep_;
  Status status_;
};

/** Runs `run` now (sync) or queued (async, returns a Promise). */
Napi::Value RunKernel(Napi::Env env, bool async, std::function<Status()> run,
                      std::function<Napi::Value(Napi::Env)> done, const std::vector<Napi::Object>& keep);

// Export registration, one per area (js_*.cc).
void InitPatch(Napi::Env env, Napi::Object exports);
void InitMoment(Napi::Env env, Napi::Object exports);
void InitCholesky(Napi::Env env, Napi::Object exports);
void InitUpdate(Napi::Env env, Napi::Object exports);
void InitInfo(Napi::Env env, Napi::Object exports);

}  // namespace rome
