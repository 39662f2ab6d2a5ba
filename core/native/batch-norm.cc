// BatchNorm over the last axis of x, seen as rows × C. Training normalizes by the batch's mean and
// biased variance (tf.moments's), which it hands back for the shards' moving averages; its
// gradient is the closed form through those moments, one pass for the sums and one for dx,
// where tfjs's autodiff of moments and batchNorm ran some twenty broadcast ops. Sums are in
// double: a channel's sum runs over a whole batch of activation maps.
#include "batch-norm.h"

#include <napi.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "napi-args.h"
#include "vector-clones.h"

namespace {

using caviar::Floats;
using caviar::floats;
using caviar::integer;
using caviar::need;
using caviar::number;

struct Channels {
  int64_t rows, C;
};

Channels channels(const Napi::CallbackInfo& info, const Floats& x, size_t at) {
  const int64_t C = integer(info, at, "channels");
  if (C == 0 || x.length % C != 0)
    throw Napi::RangeError::New(info.Env(), "x's length is not a multiple of the channels");
  return {static_cast<int64_t>(x.length) / C, C};
}

CAVIAR_VECTOR_CLONES void columnSums(const float* x, int64_t rows, int64_t C, double* sums) {
  for (int64_t r = 0; r < rows; r++)
    for (int64_t c = 0; c < C; c++) sums[c] += x[r * C + c];
}

CAVIAR_VECTOR_CLONES void squaredDeviations(const float* x, int64_t rows, int64_t C,
                                            const double* mean, double* sums) {
  for (int64_t r = 0; r < rows; r++)
    for (int64_t c = 0; c < C; c++) {
      const double d = x[r * C + c] - mean[c];
      sums[c] += d * d;
    }
}

/** y = x · factor + shift per channel. */
CAVIAR_VECTOR_CLONES void affine(const float* x, int64_t rows, int64_t C, const float* factor,
                                 const float* shift, float* y) {
  for (int64_t r = 0; r < rows; r++)
    for (int64_t c = 0; c < C; c++) y[r * C + c] = x[r * C + c] * factor[c] + shift[c];
}

/** batchNormTrain(x, gamma, beta, C, epsilon, y, mean, variance): all outputs overwritten. */
Napi::Value BatchNormTrain(const Napi::CallbackInfo& info) {
  Floats x = floats(info, 0, "x"), gamma = floats(info, 1, "gamma"), beta = floats(info, 2, "beta");
  const Channels s = channels(info, x, 3);
  const double eps = number(info, 4, "epsilon");
  Floats y = floats(info, 5, "y"), mean = floats(info, 6, "mean"),
         variance = floats(info, 7, "variance");
  for (const auto& [f, name] : {std::pair{gamma, "gamma"}, {beta, "beta"}, {mean, "mean"},
                                {variance, "variance"}})
    need(info, f, s.C, name);
  need(info, y, x.length, "y");
  std::vector<double> m(s.C, 0.0), v(s.C, 0.0);
  if (s.rows > 0) {
    columnSums(x.data, s.rows, s.C, m.data());
    for (auto& value : m) value /= static_cast<double>(s.rows);
    squaredDeviations(x.data, s.rows, s.C, m.data(), v.data());
    for (auto& value : v) value /= static_cast<double>(s.rows);
  }
  std::vector<float> factor(s.C), shift(s.C);
  for (int64_t c = 0; c < s.C; c++) {
    mean.data[c] = static_cast<float>(m[c]);
    variance.data[c] = static_cast<float>(v[c]);
    const double f = gamma.data[c] / std::sqrt(v[c] + eps);
    factor[c] = static_cast<float>(f);
    shift[c] = static_cast<float>(beta.data[c] - m[c] * f);
  }
  affine(x.data, s.rows, s.C, factor.data(), shift.data(), y.data);
  return info.Env().Undefined();
}

/** batchNormInfer(x, mean, variance, gamma, beta, C, epsilon, y): y overwritten. */
Napi::Value BatchNormInfer(const Napi::CallbackInfo& info) {
  Floats x = floats(info, 0, "x"), mean = floats(info, 1, "mean"),
         variance = floats(info, 2, "variance"), gamma = floats(info, 3, "gamma"),
         beta = floats(info, 4, "beta");
  const Channels s = channels(info, x, 5);
  const double eps = number(info, 6, "epsilon");
  Floats y = floats(info, 7, "y");
  for (const auto& [f, name] : {std::pair{gamma, "gamma"}, {beta, "beta"}, {mean, "mean"},
                                {variance, "variance"}})
    need(info, f, s.C, name);
  need(info, y, x.length, "y");
  std::vector<float> factor(s.C), shift(s.C);
  for (int64_t c = 0; c < s.C; c++) {
    const double f = gamma.data[c] / std::sqrt(static_cast<double>(variance.data[c]) + eps);
    factor[c] = static_cast<float>(f);
    shift[c] = static_cast<float>(beta.data[c] - mean.data[c] * f);
  }
  affine(x.data, s.rows, s.C, factor.data(), shift.data(), y.data);
  return info.Env().Undefined();
}

CAVIAR_VECTOR_CLONES void gradientSums(const float* dy, const float* x, int64_t rows, int64_t C,
                                       const double* mean, double* sumDy, double* sumDyX) {
  for (int64_t r = 0; r < rows; r++)
    for (int64_t c = 0; c < C; c++) {
      const double g = dy[r * C + c];
      sumDy[c] += g;
      sumDyX[c] += g * (x[r * C + c] - mean[c]);
    }
}

/** dx = a·dy + b·x + k per channel: the closed form below, folded into three coefficients. */
CAVIAR_VECTOR_CLONES void gradientOut(const float* dy, const float* x, int64_t rows, int64_t C,
                                      const float* a, const float* b, const float* k, float* dx) {
  for (int64_t r = 0; r < rows; r++)
    for (int64_t c = 0; c < C; c++)
      dx[r * C + c] = a[c] * dy[r * C + c] + b[c] * x[r * C + c] + k[c];
}

/**
 * batchNormGrad(dy, x, gamma, mean, variance, C, epsilon, dx, dgamma, dbeta): with x̂ = (x − μ)·s,
 * s = 1/√(σ² + ε) and N rows, dβ = Σ dy, dγ = Σ dy·x̂ and
 * dx = γ·s·(dy − dβ/N − x̂·dγ/N). All outputs overwritten.
 */
Napi::Value BatchNormGrad(const Napi::CallbackInfo& info) {
  Floats dy = floats(info, 0, "dy"), x = floats(info, 1, "x"), gamma = floats(info, 2, "gamma"),
         mean = floats(info, 3, "mean"), variance = floats(info, 4, "variance");
  const Channels s = channels(info, x, 5);
  const double eps = number(info, 6, "epsilon");
  Floats dx = floats(info, 7, "dx"), dgamma = floats(info, 8, "dgamma"),
         dbeta = floats(info, 9, "dbeta");
  for (const auto& [f, name] : {std::pair{gamma, "gamma"}, {mean, "mean"}, {variance, "variance"},
                                {dgamma, "dgamma"}, {dbeta, "dbeta"}})
    need(info, f, s.C, name);
  need(info, dy, x.length, "dy");
  need(info, dx, x.length, "dx");
  std::vector<double> mu(s.C), sumDy(s.C, 0.0), sumDyX(s.C, 0.0);
  for (int64_t c = 0; c < s.C; c++) mu[c] = mean.data[c];
  gradientSums(dy.data, x.data, s.rows, s.C, mu.data(), sumDy.data(), sumDyX.data());
  std::vector<float> a(s.C), b(s.C), k(s.C);
  const double n = static_cast<double>(std::max<int64_t>(1, s.rows));
  for (int64_t c = 0; c < s.C; c++) {
    const double inv = 1.0 / std::sqrt(static_cast<double>(variance.data[c]) + eps);
    const double dg = sumDyX[c] * inv;  // Σ dy·x̂
    dgamma.data[c] = static_cast<float>(dg);
    dbeta.data[c] = static_cast<float>(sumDy[c]);
    // dx = γs·dy − γs·dβ/N − γs²·dγ/N·(x − μ)
    const double gs = gamma.data[c] * inv;
    a[c] = static_cast<float>(gs);
    b[c] = static_cast<float>(-gs * inv * dg / n);
    k[c] = static_cast<float>(-gs * sumDy[c] / n + gs * inv * dg / n * mu[c]);
  }
  gradientOut(dy.data, x.data, s.rows, s.C, a.data(), b.data(), k.data(), dx.data);
  return info.Env().Undefined();
}

}  // namespace

void caviar::RegisterBatchNorm(Napi::Env env, Napi::Object exports) {
  exports.Set("batchNormTrain", Napi::Function::New(env, BatchNormTrain));
  exports.Set("batchNormInfer", Napi::Function::New(env, BatchNormInfer));
  exports.Set("batchNormGrad", Napi::Function::New(env, BatchNormGrad));
}
