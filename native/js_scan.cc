// N-API wrapper of the weight scan (scan.h): runs on libuv's pool and resolves with the sample or
// the first non-finite value; a failed read rejects with RomeError("ERR_IO").
#include <memory>
#include <vector>

#include "napi_util.h"
#include "scan.h"

namespace rome {

// scanF32(path: string, offset, length, stride) -> Promise<{ sample: Float32Array } | { bad: { index, value } }>
static Napi::Value ScanF32(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  double offset, length, stride;
  if (!Require(env, info[0].IsString(), "scanF32 expects a path string") || !GetNumber(env, info[1], "offset", offset) ||
      !GetNumber(env, info[2], "length", length) || !GetNumber(env, info[3], "stride", stride))
    return env.Undefined();
  const auto integer = [](double v) { return v >= 0 && v <= 9007199254740991.0 && v == double(int64_t(v)); };
  if (!Require(env, integer(offset) && integer(length) && integer(stride) && stride >= 1 && int64_t(length) % 4 == 0,
               "scanF32: offset, length and stride must be integers >= 0 (stride >= 1, length a multiple of 4)"))
    return env.Undefined();
  const std::string path = info[0].As<Napi::String>().Utf8Value();
  const int64_t n = int64_t(length) / 4, s = int64_t(stride);
  struct Out {
    std::vector<float> sample;
    ScanFinding found;
  };
  auto out = std::make_shared<Out>();
  out->sample.resize(size_t((n + s - 1) / s));  // ceil(n / stride) values: small (the fingerprint takes ~4096)
  auto* worker = new PromiseWorker(env, "scanF32", {});
  Napi::Promise p = worker->Promise();
  worker->Start([=] { return scan_f32_file(path, int64_t(offset), int64_t(length), s, out->sample.data(), out->found); },
                [out](Napi::Env env) -> Napi::Value {
                  Napi::Object o = Napi::Object::New(env);
                  if (out->found.bad_index >= 0) {
                    Napi::Object bad = Napi::Object::New(env);
                    bad.Set("index", double(out->found.bad_index));
                    bad.Set("value", double(out->found.bad_value));
                    o.Set("bad", bad);
                    return o;
                  }
                  Napi::Float32Array sample = Napi::Float32Array::New(env, out->sample.size());
                  if (env.IsExceptionPending()) return env.Undefined();
                  std::copy(out->sample.begin(), out->sample.end(), sample.Data());
                  o.Set("sample", sample);
                  return o;
                });
  return p;
}

void InitScan(Napi::Env env, Napi::Object exports) {
  exports.Set("scanF32", Napi::Function::New(env, ScanF32, "scanF32"));
}

}  // namespace rome
