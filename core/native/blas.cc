// The native half of the workers' `blas` compute backend: the matrix products and convolutions of
// tfjs's heaviest kernels, on OpenBLAS's cblas_sgemm. Row-major float32 throughout; transposed
// operands go to sgemm as flags, never as copies. worker/blas/kernels.ts decides what reaches
// here (float32, NHWC, shapes checked); this file still checks every length against the shapes
// it is given, so a caller's mistake is a JS exception, never a write out of bounds.
#include "blas.h"

#include <napi.h>

#include <cblas.h>

#include "napi-args.h"
#include "conv-direct.h"
#include "window-geometry.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

extern "C" {
// OpenBLAS extensions; declared here so any cblas.h (the alternatives link) compiles.
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
char* openblas_get_config(void);
char* openblas_get_corename(void);
}

namespace {

using caviar::Conv;
using caviar::conv;
using caviar::Floats;
using caviar::floats;
using caviar::integer;
using caviar::need;

void relu(float* c, size_t n) {
  for (size_t i = 0; i < n; i++) c[i] = c[i] > 0.0f ? c[i] : 0.0f;
}

// C's rows start as the bias, so sgemm with beta = 1 adds the product to it in one pass.
void fillBias(float* c, size_t rows, size_t cols, const float* bias) {
  for (size_t r = 0; r < rows; r++) std::memcpy(c + r * cols, bias, cols * sizeof(float));
}

/**
 * gemm(transA, transB, m, n, k, a, b, c, batch, strideA, strideB, bias?, relu):
 * c[i] = op(a[i]) · op(b[i]) (+ bias per row) (ReLU), i < batch, c[i] of m×n at i·m·n.
 * A stride of 0 broadcasts that operand over the batch.
 */
Napi::Value Gemm(const Napi::CallbackInfo& info) {
  const bool transA = info[0].ToBoolean();
  const bool transB = info[1].ToBoolean();
  const int64_t m = integer(info, 2, "m"), n = integer(info, 3, "n"), k = integer(info, 4, "k");
  Floats a = floats(info, 5, "a"), b = floats(info, 6, "b"), c = floats(info, 7, "c");
  const int64_t batch = integer(info, 8, "batch");
  const int64_t strideA = integer(info, 9, "strideA"), strideB = integer(info, 10, "strideB");
  const bool hasBias = !info[11].IsNull() && !info[11].IsUndefined();
  Floats bias = hasBias ? floats(info, 11, "bias") : Floats{nullptr, 0};
  const bool withRelu = info[12].ToBoolean();
  if (batch == 0 || m == 0 || n == 0) return info.Env().Undefined();
  need(info, a, (batch - 1) * strideA + m * k, "a");
  need(info, b, (batch - 1) * strideB + k * n, "b");
  need(info, c, batch * m * n, "c");
  if (hasBias) need(info, bias, n, "bias");
  for (int64_t i = 0; i < batch; i++) {
    float* ci = c.data + i * m * n;
    if (hasBias) fillBias(ci, m, n, bias.data);
    if (k > 0) {
      cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans,
                  transB ? CblasTrans : CblasNoTrans, m, n, k, 1.0f, a.data + i * strideA,
                  transA ? m : k, b.data + i * strideB, transB ? k : n, hasBias ? 1.0f : 0.0f, ci,
                  n);
    } else if (!hasBias) {
      std::fill(ci, ci + m * n, 0.0f);
    }
  }
  if (withRelu) relu(c.data, batch * m * n);
  return info.Env().Undefined();
}

/** Rows of images [n0, n0 + count) into cols[pixel][fh][fw][c]; zeros where the patch is pad. */
void im2col(const Conv& g, const float* x, int64_t n0, int64_t count, float* cols) {
  const int64_t K = g.patch();
  for (int64_t n = 0; n < count; n++) {
    const float* img = x + (n0 + n) * g.inSize();
    for (int64_t oh = 0; oh < g.outH; oh++) {
      for (int64_t ow = 0; ow < g.outW; ow++) {
        float* row = cols + ((n * g.outH + oh) * g.outW + ow) * K;
        for (int64_t i = 0; i < g.fH; i++) {
          const int64_t h = oh * g.strideH - g.padTop + i * g.dilH;
          float* dst = row + i * g.fW * g.inC;
          if (h < 0 || h >= g.inH) {
            std::fill(dst, dst + g.fW * g.inC, 0.0f);
            continue;
          }
          const int64_t w0 = ow * g.strideW - g.padLeft;
          const int64_t wLast = w0 + (g.fW - 1) * g.dilW;
          if (g.dilW == 1 && w0 >= 0 && wLast < g.inW) {
            // The row's taps are neighbours in the input: one copy, not one per tap (with few
            // channels, a tap is a float or two and the calls cost more than the copying).
            std::memcpy(dst, img + (h * g.inW + w0) * g.inC, g.fW * g.inC * sizeof(float));
            continue;
          }
          for (int64_t j = 0; j < g.fW; j++) {
            const int64_t w = w0 + j * g.dilW;
            if (w < 0 || w >= g.inW)
              std::fill(dst + j * g.inC, dst + (j + 1) * g.inC, 0.0f);
            else
              std::memcpy(dst + j * g.inC, img + (h * g.inW + w) * g.inC, g.inC * sizeof(float));
          }
        }
      }
    }
  }
}

/** The adjoint of im2col: adds each cols entry back into the input pixel it came from. */
void col2im(const Conv& g, const float* cols, int64_t n0, int64_t count, float* dx) {
  const int64_t K = g.patch();
  for (int64_t n = 0; n < count; n++) {
    float* img = dx + (n0 + n) * g.inSize();
    for (int64_t oh = 0; oh < g.outH; oh++) {
      for (int64_t ow = 0; ow < g.outW; ow++) {
        const float* row = cols + ((n * g.outH + oh) * g.outW + ow) * K;
        for (int64_t i = 0; i < g.fH; i++) {
          const int64_t h = oh * g.strideH - g.padTop + i * g.dilH;
          if (h < 0 || h >= g.inH) continue;
          const int64_t w0 = ow * g.strideW - g.padLeft;
          if (g.dilW == 1 && w0 >= 0 && w0 + g.fW <= g.inW) {
            // As in im2col: the row's taps are neighbours, so one loop adds them all.
            const float* src = row + i * g.fW * g.inC;
            float* dst = img + (h * g.inW + w0) * g.inC;
            for (int64_t k = 0; k < g.fW * g.inC; k++) dst[k] += src[k];
            continue;
          }
          for (int64_t j = 0; j < g.fW; j++) {
            const int64_t w = w0 + j * g.dilW;
            if (w < 0 || w >= g.inW) continue;
            const float* src = row + (i * g.fW + j) * g.inC;
            float* dst = img + (h * g.inW + w) * g.inC;
            for (int64_t c = 0; c < g.inC; c++) dst[c] += src[c];
          }
        }
      }
    }
  }
}

std::vector<float>& scratch(size_t floats) {
  // One per thread; node calls in on its main thread only, so this is one buffer, reused.
  thread_local std::vector<float> buffer;
  if (buffer.size() < floats) buffer.resize(floats);
  return buffer;
}

/** conv2d(x, filter, y, dims, bias?, relu): y = conv(x, filter) (+ bias) (ReLU), NHWC. */
Napi::Value Conv2d(const Napi::CallbackInfo& info) {
  Floats x = floats(info, 0, "x"), f = floats(info, 1, "filter"), y = floats(info, 2, "y");
  const Conv g = conv(info, 3);
  const bool hasBias = !info[4].IsNull() && !info[4].IsUndefined();
  Floats bias = hasBias ? floats(info, 4, "bias") : Floats{nullptr, 0};
  const bool withRelu = info[5].ToBoolean();
  const int64_t K = g.patch(), O = g.outC;
  need(info, x, g.batch * g.inSize(), "x");
  need(info, f, K * O, "filter");
  need(info, y, g.batch * g.outSize(), "y");
  if (hasBias) need(info, bias, O, "bias");
  if (caviar::convDirectApplies(g)) {
    caviar::convDirectForward(g, x.data, f.data, hasBias ? bias.data : nullptr, withRelu, y.data);
    return info.Env().Undefined();
  }
  const int64_t chunk = g.chunk();
  float* cols = g.direct() ? nullptr : scratch(chunk * g.pixels() * K).data();
  for (int64_t n0 = 0; n0 < g.batch; n0 += chunk) {
    const int64_t count = std::min(chunk, g.batch - n0);
    const int64_t rows = count * g.pixels();
    float* out = y.data + n0 * g.outSize();
    const float* a = x.data + n0 * g.inSize();
    if (cols) {
      im2col(g, x.data, n0, count, cols);
      a = cols;
    }
    if (hasBias) fillBias(out, rows, O, bias.data);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, O, K, 1.0f, a, K, f.data, O,
                hasBias ? 1.0f : 0.0f, out, O);
  }
  if (withRelu) relu(y.data, g.batch * g.outSize());
  return info.Env().Undefined();
}

/** conv2dBackpropInput(dy, filter, dx, dims): dx = col2im(dy · filterᵀ). dx is overwritten. */
Napi::Value Conv2dBackpropInput(const Napi::CallbackInfo& info) {
  Floats dy = floats(info, 0, "dy"), f = floats(info, 1, "filter"), dx = floats(info, 2, "dx");
  const Conv g = conv(info, 3);
  const int64_t K = g.patch(), O = g.outC;
  need(info, dy, g.batch * g.outSize(), "dy");
  need(info, f, K * O, "filter");
  need(info, dx, g.batch * g.inSize(), "dx");
  if (g.direct()) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, g.batch * g.pixels(), K, O, 1.0f,
                dy.data, O, f.data, O, 0.0f, dx.data, K);
    return info.Env().Undefined();
  }
  std::fill(dx.data, dx.data + g.batch * g.inSize(), 0.0f);
  const int64_t chunk = g.chunk();
  float* cols = scratch(chunk * g.pixels() * K).data();
  for (int64_t n0 = 0; n0 < g.batch; n0 += chunk) {
    const int64_t count = std::min(chunk, g.batch - n0);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, count * g.pixels(), K, O, 1.0f,
                dy.data + n0 * g.outSize(), O, f.data, O, 0.0f, cols, K);
    col2im(g, cols, n0, count, dx.data);
  }
  return info.Env().Undefined();
}

/** conv2dBackpropFilter(x, dy, dw, dims): dw = Σ over chunks of im2col(x)ᵀ · dy. */
Napi::Value Conv2dBackpropFilter(const Napi::CallbackInfo& info) {
  Floats x = floats(info, 0, "x"), dy = floats(info, 1, "dy"), dw = floats(info, 2, "dw");
  const Conv g = conv(info, 3);
  const int64_t K = g.patch(), O = g.outC;
  need(info, x, g.batch * g.inSize(), "x");
  need(info, dy, g.batch * g.outSize(), "dy");
  need(info, dw, K * O, "dw");
  if (g.batch == 0) {
    std::fill(dw.data, dw.data + K * O, 0.0f);
    return info.Env().Undefined();
  }
  if (caviar::convDirectApplies(g)) {
    caviar::convDirectFilterGrad(g, x.data, dy.data, dw.data);
    return info.Env().Undefined();
  }
  const int64_t chunk = g.chunk();
  float* cols = g.direct() ? nullptr : scratch(chunk * g.pixels() * K).data();
  for (int64_t n0 = 0; n0 < g.batch; n0 += chunk) {
    const int64_t count = std::min(chunk, g.batch - n0);
    const float* a = x.data + n0 * g.inSize();
    if (cols) {
      im2col(g, x.data, n0, count, cols);
      a = cols;
    }
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, O, count * g.pixels(), 1.0f, a, K,
                dy.data + n0 * g.outSize(), O, n0 == 0 ? 0.0f : 1.0f, dw.data, O);
  }
  return info.Env().Undefined();
}

Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  const int64_t n = integer(info, 0, "threads");
  if (n < 1) throw Napi::RangeError::New(info.Env(), "threads must be >= 1");
  openblas_set_num_threads(static_cast<int>(n));
  return Napi::Number::New(info.Env(), openblas_get_num_threads());
}

Napi::Value Threads(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), openblas_get_num_threads());
}

Napi::Value Config(const Napi::CallbackInfo& info) {
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("config", std::string(openblas_get_config()));
  o.Set("core", std::string(openblas_get_corename()));
  o.Set("threads", openblas_get_num_threads());
  return o;
}

}  // namespace

void caviar::RegisterBlas(Napi::Env env, Napi::Object exports) {
  exports.Set("gemm", Napi::Function::New(env, Gemm));
  exports.Set("conv2d", Napi::Function::New(env, Conv2d));
  exports.Set("conv2dBackpropInput", Napi::Function::New(env, Conv2dBackpropInput));
  exports.Set("conv2dBackpropFilter", Napi::Function::New(env, Conv2dBackpropFilter));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads));
  exports.Set("threads", Napi::Function::New(env, Threads));
  exports.Set("config", Napi::Function::New(env, Config));
}
