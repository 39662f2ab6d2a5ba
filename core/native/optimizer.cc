// The per-element loops of a shard's optimizer step, which are most of a shard's CPU per push.
// They compute exactly what ps/optimizers.ts computes: float32 storage, double arithmetic in
// the same order, no fused multiply-add (binding.gyp turns contraction off), so the native and
// JS paths give bit-identical parameters and a shard may use either.
#include "optimizer.h"

#include <napi.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "napi-args.h"
#include "vector-clones.h"

namespace {

using caviar::Floats;
using caviar::floats;
using caviar::integer;
using caviar::need;
using caviar::number;

CAVIAR_VECTOR_CLONES
void adamLoop(float* __restrict params, const float* __restrict grad, float* __restrict m,
              float* __restrict v, size_t n, double stepSize, double inverseCorrection2,
              double beta1, double beta2, double epsilon, double l2) {
  const double newShare1 = 1 - beta1, newShare2 = 1 - beta2;
  for (size_t i = 0; i < n; i++) {
    const double gi = static_cast<double>(grad[i]) + l2 * static_cast<double>(params[i]);
    const double mi = beta1 * static_cast<double>(m[i]) + newShare1 * gi;
    const double vi = beta2 * static_cast<double>(v[i]) + newShare2 * gi * gi;
    m[i] = static_cast<float>(mi);
    v[i] = static_cast<float>(vi);
    params[i] = static_cast<float>(static_cast<double>(params[i]) -
                                   (stepSize * mi) / (std::sqrt(vi * inverseCorrection2) + epsilon));
  }
}

// NaN and ±Infinity are exactly the floats whose exponent bits are all ones.
CAVIAR_VECTOR_CLONES
bool anyNonFinite(const float* data, size_t n) {
  uint32_t bad = 0;
  for (size_t i = 0; i < n; i++) {
    uint32_t bits;
    std::memcpy(&bits, data + i, sizeof bits);
    bad |= static_cast<uint32_t>((bits & 0x7f800000u) == 0x7f800000u);
  }
  return bad != 0;
}

/**
 * adam(params, grad, m, v, stepSize, inverseCorrection2, beta1, beta2, epsilon, l2), in place:
 * g = grad + l2·θ; m = β1·m + (1-β1)·g; v = β2·v + (1-β2)·g²;
 * θ -= stepSize·m / (√(v·inverseCorrection2) + ε), with stepSize = lr/(1-β1^t) and
 * inverseCorrection2 = 1/(1-β2^t) worked out once by the caller.
 */
Napi::Value Adam(const Napi::CallbackInfo& info) {
  Floats p = floats(info, 0, "params"), g = floats(info, 1, "grad");
  Floats m = floats(info, 2, "m"), v = floats(info, 3, "v");
  const double stepSize = number(info, 4, "stepSize");
  const double inverseCorrection2 = number(info, 5, "inverseCorrection2");
  const double beta1 = number(info, 6, "beta1"), beta2 = number(info, 7, "beta2");
  const double epsilon = number(info, 8, "epsilon"), l2 = number(info, 9, "l2");
  const size_t n = p.length;
  need(info, g, n, "grad");
  need(info, m, n, "m");
  need(info, v, n, "v");
  adamLoop(p.data, g.data, m.data, v.data, n, stepSize, inverseCorrection2, beta1, beta2, epsilon,
           l2);
  return info.Env().Undefined();
}

/** firstNonFinite(values, start, count): the index of the first NaN or ±Infinity in the range, or -1. */
Napi::Value FirstNonFinite(const Napi::CallbackInfo& info) {
  Floats x = floats(info, 0, "values");
  const int64_t start = integer(info, 1, "start"), count = integer(info, 2, "count");
  need(info, x, static_cast<size_t>(start + count), "values");
  const float* data = x.data + start;
  // A branch-free scan first; the exact index is looked for only once something is found.
  if (anyNonFinite(data, static_cast<size_t>(count))) {
    for (int64_t i = 0; i < count; i++) {
      if (!std::isfinite(data[i])) return Napi::Number::New(info.Env(), static_cast<double>(start + i));
    }
  }
  return Napi::Number::New(info.Env(), -1);
}

}  // namespace

void caviar::RegisterOptimizer(Napi::Env env, Napi::Object exports) {
  exports.Set("adam", Napi::Function::New(env, Adam));
  exports.Set("firstNonFinite", Napi::Function::New(env, FirstNonFinite));
}
