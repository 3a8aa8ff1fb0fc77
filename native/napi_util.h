// N-API plumbing shared by the thin wrappers (js_*.cc): per-instance data holding the RomeError
// class handed over by lib/native.ts (one per Node environment, so worker threads each get their
// own), throwing RomeError, tensor argument unpacking ({ dims, type, data } over caller memory)
// with explicit typed-array kind checks and overflow-checked shapes, and the Promise-returning
// worker that owns copies of what it reads and writes.
//
// The addon is safe on its own, whatever lib/ checks first:
// - shapes: rank <= kMaxRank, every dim an integer in [0, kMaxDim], the product of the dims (zeros
//   counted as 1) at most kMaxElements, all with checked multiplication, so that no index a kernel
//   computes from its dims can overflow int64;
// - reading arguments can run JavaScript (getters on `dims`, `data`, `type`) which may detach a
//   buffer read before, so wrappers first Get* every argument (JS runs), then Bind them all (no JS
//   runs: each view is taken and its length checked against its dims), then call the kernel;
// - an async kernel never touches caller memory off the JS thread: PromiseWorker copies what it
//   reads into native memory before queueing and writes results back on the JS thread when done,
//   only into buffers still attached with the same length (else it rejects); sync calls stay
//   copy-free.
#pragma once
#include <napi.h>

#include <cstdint>
#include <cstdlib>
#include <functional>
#include <initializer_list>
#include <memory>
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

constexpr size_t kMaxRank = 8;
constexpr int64_t kMaxDim = INT32_MAX;                // row indices and plans are int32
constexpr int64_t kMaxElements = int64_t(1) << 48;    // 1 PiB of floats: never a real buffer

/** a * b into out unless it overflows int64 (then false). */
inline bool CheckedMul(int64_t a, int64_t b, int64_t& out) { return !__builtin_mul_overflow(a, b, &out); }

/** A tensor argument: Get* fills name, kind, dims and holder; Bind fills data and length. */
struct Tensor {
  std::string name;
  napi_typedarray_type kind = napi_float32_array;
  bool bare = false;               // a bare typed array: dims = { length } once bound
  std::vector<int64_t> dims;
  int64_t count = 0;               // product of dims (checked), the length Bind requires
  Napi::TypedArray holder;
  void* data = nullptr;            // valid from Bind until JavaScript runs again
  int64_t length = 0;              // elements
  int64_t dim(size_t i) const { return i < dims.size() ? dims[i] : 1; }
  size_t bytes() const;
  template <class T> T* as() const { return static_cast<T*>(data); }
};

/** Reads { dims, type, data } whose data is a typed array of `kind`, with rank in [min_rank, max_rank]
 *  and dims within the limits above. On failure throws ERR_NATIVE_ARGUMENT, returns false. */
bool GetTensor(Napi::Env env, Napi::Value v, const char* name, napi_typedarray_type kind, size_t min_rank,
               size_t max_rank, Tensor& out);
/** A bare typed array of `kind` (index lists, plans, masks); dims = { length } once bound. */
bool GetArray(Napi::Env env, Napi::Value v, const char* name, napi_typedarray_type kind, Tensor& out);
/** Views every tensor's memory (after all Get*; runs no JavaScript) and checks that each length
 *  equals its dims' product. Throws ERR_NATIVE_ARGUMENT naming the first mismatch. */
bool Bind(Napi::Env env, std::initializer_list<Tensor*> tensors);
bool Bind(Napi::Env env, const std::vector<Tensor*>& tensors);  // a variable number of tensors
bool GetNumber(Napi::Env env, Napi::Value v, const char* name, double& out);
/** Throws ERR_NATIVE_ARGUMENT "<what>" unless ok; returns ok. */
bool Require(Napi::Env env, bool ok, const std::string& what);

/** How an async kernel uses a bound tensor: which part it reads and writes (a square matrix's
 *  upper triangle, or all), and whether its result goes back to the caller's buffer. */
struct Stage {
  Tensor* tensor;
  bool write;          // copied back when the kernel is done
  bool upper = false;  // only the upper triangle (j >= i) of a square (n, n) matrix is used
};

/** Runs a kernel's `run` on libuv's pool, then resolves with `done(env)` or rejects with a RomeError
 *  built from the Status. Constructed before the kernel's pointers are taken: it copies each staged
 *  tensor into native memory and points the Tensor's data there. When done, on the JS thread, it
 *  writes each `write` stage back if its buffer is still attached with the same length, else
 *  rejects (ERR_NATIVE_ARGUMENT) and writes nothing. */
class PromiseWorker : public Napi::AsyncWorker {
 public:
  PromiseWorker(Napi::Env env, const char* fn, std::initializer_list<Stage> stages);
  const std::string& error() const { return error_; }  // set when a copy could not be allocated
  void Start(std::function<Status()> run, std::function<Napi::Value(Napi::Env)> done);
  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Execute() override { status_ = run_(); }
  void OnOK() override;

 private:
  struct Copy {
    std::string name;
    Napi::Reference<Napi::TypedArray> holder;
    std::unique_ptr<uint8_t, void (*)(void*)> data{nullptr, std::free};
    size_t bytes = 0, elem = 0;
    int64_t upper_n = 0;  // > 0: only the upper triangle of an (upper_n, upper_n) matrix moves
    bool write = false;
  };
  static void CopyRegion(uint8_t* dst, const uint8_t* src, const Copy& c);
  std::string fn_, error_;
  Napi::Promise::Deferred deferred_;
  std::vector<Copy> copies_;
  std::function<Status()> run_;
  std::function<Napi::Value(Napi::Env)> done_;
  Status status_;
};

/** One kernel call, sync (on the caller's memory, no copies) or async (a PromiseWorker over
 *  `stages`). Construct it after Bind and before taking the tensors' data pointers:
 *    KernelCall call(env, "fn", async, {{&acc, true, true}, {&keys, false}});
 *    if (!call.ok()) return env.Undefined();
 *    double* a = acc.as<double>();  // the native copy when async
 *    return call.Run([=] { ... }, done); */
class KernelCall {
 public:
  KernelCall(Napi::Env env, const char* fn, bool async, std::initializer_list<Stage> stages);
  bool ok() const { return ok_; }  // false: an exception is pending
  Napi::Value Run(std::function<Status()> run, std::function<Napi::Value(Napi::Env)> done);

 private:
  Napi::Env env_;
  std::unique_ptr<PromiseWorker> worker_;
  bool ok_ = true;
};

// Export registration, one per area (js_*.cc).
void InitRestore(Napi::Env env, Napi::Object exports);
void InitMoment(Napi::Env env, Napi::Object exports);
void InitCholesky(Napi::Env env, Napi::Object exports);
void InitUpdate(Napi::Env env, Napi::Object exports);
void InitInfo(Napi::Env env, Napi::Object exports);
void InitHeap(Napi::Env env, Napi::Object exports);
void InitScan(Napi::Env env, Napi::Object exports);

}  // namespace rome
