// NHWC average and max pooling and their gradients for the blas backend, with the arithmetic of
// tfjs's cpu kernels: an average divides by the window's in-bounds pixels, its gradient spreads
// over the whole window (padding included), and a maximum's gradient goes to the first of equal
// largest values in row-major window order.
#include "pool.h"

#include <napi.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <vector>

#include "napi-args.h"
#include "vector-clones.h"
#include "window-geometry.h"

namespace {

using caviar::Conv;
using caviar::Floats;
using caviar::need;

Conv poolGeometry(const Napi::CallbackInfo& info, size_t i) {
  const Conv g = caviar::conv(info, i);
  if (g.outC != g.inC || g.dilH != 1 || g.dilW != 1)
    throw Napi::RangeError::New(info.Env(), "pool dims: channels in and out differ, or dilated");
  return g;
}

/** The in-bounds rows [hMin, hMax) and columns [wMin, wMax) of output pixel (oh, ow)'s window. */
struct Window {
  int64_t hMin, hMax, wMin, wMax;

  Window(const Conv& g, int64_t oh, int64_t ow)
      : hMin(std::max<int64_t>(0, oh * g.strideH - g.padTop)),
        hMax(std::min(g.inH, oh * g.strideH - g.padTop + g.fH)),
        wMin(std::max<int64_t>(0, ow * g.strideW - g.padLeft)),
        wMax(std::min(g.inW, ow * g.strideW - g.padLeft + g.fW)) {}

  /** A window of padding only. */
  bool empty() const { return hMin >= hMax || wMin >= wMax; }
};

/**
 * Calls visit(outOffset, n, hMin, hMax, wMin, wMax) for each output window: its image and the
 * in-bounds rows and columns it covers (empty where it lies in the padding only).
 */
template <typename Visit>
void forEachWindow(const Conv& g, Visit visit) {
  for (int64_t n = 0; n < g.batch; n++) {
    for (int64_t oh = 0; oh < g.outH; oh++) {
      for (int64_t ow = 0; ow < g.outW; ow++) {
        const Window win(g, oh, ow);
        visit(((n * g.outH + oh) * g.outW + ow) * g.inC, n, win.hMin, win.hMax, win.wMin,
              win.wMax);
      }
    }
  }
}

/** Calls visit(outOffset, inOffset, count) for each in-bounds pixel of each output window. */
template <typename Visit>
void forEachWindowPixel(const Conv& g, Visit visit) {
  forEachWindow(g, [&](int64_t o, int64_t n, int64_t hMin, int64_t hMax, int64_t wMin,
                       int64_t wMax) {
    const int64_t count = std::max<int64_t>(0, hMax - hMin) * std::max<int64_t>(0, wMax - wMin);
    for (int64_t h = hMin; h < hMax; h++)
      for (int64_t w = wMin; w < wMax; w++) visit(o, ((n * g.inH + h) * g.inW + w) * g.inC, count);
  });
}

void checkLengths(const Napi::CallbackInfo& info, const Conv& g, const Floats& in,
                  const Floats& out, const char* inName, const char* outName) {
  need(info, in, g.batch * g.inSize(), inName);
  need(info, out, g.batch * g.outSize(), outName);
}

/** avgPool(x, y, dims): y is overwritten. */
Napi::Value AvgPool(const Napi::CallbackInfo& info) {
  Floats x = caviar::floats(info, 0, "x"), y = caviar::floats(info, 1, "y");
  const Conv g = poolGeometry(info, 2);
  checkLengths(info, g, x, y, "x", "y");
  const int64_t C = g.inC;
  std::fill(y.data, y.data + g.batch * g.outSize(), 0.0f);
  std::vector<int64_t> counts(g.batch * g.pixels(), 0);
  forEachWindowPixel(g, [&](int64_t o, int64_t i, int64_t count) {
    counts[o / C] = count;
    float* dst = y.data + o;
    const float* src = x.data + i;
    for (int64_t c = 0; c < C; c++) dst[c] += src[c];
  });
  for (int64_t p = 0; p < g.batch * g.pixels(); p++) {
    if (counts[p] == 0) continue;
    float* dst = y.data + p * C;
    const float n = static_cast<float>(counts[p]);
    for (int64_t c = 0; c < C; c++) dst[c] /= n;
  }
  return info.Env().Undefined();
}

/** avgPoolGrad(dy, dx, dims): dx (the input's shape) is overwritten. */
Napi::Value AvgPoolGrad(const Napi::CallbackInfo& info) {
  Floats dy = caviar::floats(info, 0, "dy"), dx = caviar::floats(info, 1, "dx");
  const Conv g = poolGeometry(info, 2);
  checkLengths(info, g, dx, dy, "dx", "dy");
  const int64_t C = g.inC;
  const float scale = 1.0f / static_cast<float>(g.fH * g.fW);
  std::fill(dx.data, dx.data + g.batch * g.inSize(), 0.0f);
  forEachWindowPixel(g, [&](int64_t o, int64_t i, int64_t) {
    float* dst = dx.data + i;
    const float* src = dy.data + o;
    for (int64_t c = 0; c < C; c++) dst[c] += src[c] * scale;
  });
  return info.Env().Undefined();
}

/**
 * For each output element its window's maximum and, where `at` is given, the input element
 * holding it: the first of equal ones in row-major window order (a later pixel replaces the best
 * only when strictly greater, as cpu's maxPoolPositions). Channels are the inner, vectorized loop.
 */
CAVIAR_VECTOR_CLONES void windowMaxima(const Conv& g, const float* x, float* best, int32_t* at) {
  const int64_t C = g.inC;
  forEachWindow(g, [&](int64_t o, int64_t n, int64_t hMin, int64_t hMax, int64_t wMin,
                       int64_t wMax) {
    float* b = best + o;
    int32_t* p = at ? at + o : nullptr;
    if (hMin >= hMax || wMin >= wMax) {
      // A window of padding only: no input, value 0, no gradient.
      for (int64_t c = 0; c < C; c++) b[c] = 0.0f;
      if (p)
        for (int64_t c = 0; c < C; c++) p[c] = -1;
      return;
    }
    bool first = true;
    for (int64_t h = hMin; h < hMax; h++)
      for (int64_t w = wMin; w < wMax; w++) {
        const int32_t i = static_cast<int32_t>(((n * g.inH + h) * g.inW + w) * C);
        const float* v = x + i;
        if (first) {
          for (int64_t c = 0; c < C; c++) b[c] = v[c];
          if (p)
            for (int64_t c = 0; c < C; c++) p[c] = i + c;
          first = false;
        } else if (p) {
          for (int64_t c = 0; c < C; c++) {
            const bool greater = v[c] > b[c];
            b[c] = greater ? v[c] : b[c];
            p[c] = greater ? i + c : p[c];
          }
        } else {
          for (int64_t c = 0; c < C; c++) b[c] = v[c] > b[c] ? v[c] : b[c];
        }
      }
  });
}

/** maxPool(x, y, dims): y is overwritten; an empty window (all padding) gives 0. */
Napi::Value MaxPool(const Napi::CallbackInfo& info) {
  Floats x = caviar::floats(info, 0, "x"), y = caviar::floats(info, 1, "y");
  const Conv g = poolGeometry(info, 2);
  checkLengths(info, g, x, y, "x", "y");
  windowMaxima(g, x.data, y.data, nullptr);
  return info.Env().Undefined();
}

/**
 * Windows that do not overlap (stride >= size, the usual 2x2 stride 2): each window writes its
 * own pixels of dx in turn, the maximum's dy and zeros elsewhere, so dx is written near-linearly
 * once instead of zeroed and then scattered into.
 */
CAVIAR_VECTOR_CLONES void maxPoolGradDisjoint(const Conv& g, const float* __restrict dy,
                                              const float* __restrict x, float* __restrict dx) {
  const int64_t C = g.inC;
  const bool covered = g.strideH == g.fH && g.strideW == g.fW && g.padTop == 0 &&
                       g.padLeft == 0 && g.outH * g.fH == g.inH && g.outW * g.fW == g.inW;
  if (!covered) std::fill(dx, dx + g.batch * g.inSize(), 0.0f);
  std::vector<float> bestValues(C);
  std::vector<int32_t> bestAt(C);
  float* __restrict best = bestValues.data();
  int32_t* __restrict at = bestAt.data();
  // Written out, with restrict pointers: this is max pooling's hot backward loop, and through
  // forEachWindow's lambda, capturing the vectors by reference, the compiler made it much slower.
  for (int64_t n = 0; n < g.batch; n++)
    for (int64_t oh = 0; oh < g.outH; oh++) {
      for (int64_t ow = 0; ow < g.outW; ow++) {
        const Window win(g, oh, ow);
        if (win.empty()) continue;
        const int64_t hMin = win.hMin, hMax = win.hMax, wMin = win.wMin, wMax = win.wMax;
        const float* d = dy + ((n * g.outH + oh) * g.outW + ow) * C;
        const float* first = x + ((n * g.inH + hMin) * g.inW + wMin) * C;
        for (int64_t c = 0; c < C; c++) {
          best[c] = first[c];
          at[c] = 0;
        }
        int32_t k = 0;  // the window pixel, in row-major order
        for (int64_t h = hMin; h < hMax; h++)
          for (int64_t w = wMin; w < wMax; w++, k++) {
            const float* v = x + ((n * g.inH + h) * g.inW + w) * C;
            for (int64_t c = 0; c < C; c++) {
              const bool greater = v[c] > best[c];
              best[c] = greater ? v[c] : best[c];
              at[c] = greater ? k : at[c];
            }
          }
        k = 0;
        for (int64_t h = hMin; h < hMax; h++)
          for (int64_t w = wMin; w < wMax; w++, k++) {
            float* out = dx + ((n * g.inH + h) * g.inW + w) * C;
            for (int64_t c = 0; c < C; c++) out[c] = at[c] == k ? d[c] : 0.0f;
          }
      }
    }
}

/** maxPoolGrad(dy, x, dx, dims): dx (x's shape) is overwritten. */
Napi::Value MaxPoolGrad(const Napi::CallbackInfo& info) {
  Floats dy = caviar::floats(info, 0, "dy"), x = caviar::floats(info, 1, "x"),
         dx = caviar::floats(info, 2, "dx");
  const Conv g = poolGeometry(info, 3);
  checkLengths(info, g, x, dy, "x", "dy");
  need(info, dx, g.batch * g.inSize(), "dx");
  if (g.strideH >= g.fH && g.strideW >= g.fW) {
    maxPoolGradDisjoint(g, dy.data, x.data, dx.data);
    return info.Env().Undefined();
  }
  // Positions are int32, half the width of int64, so the channel loop vectorizes with the floats.
  if (g.batch * g.inSize() > INT32_MAX)
    throw Napi::RangeError::New(info.Env(), "maxPoolGrad: more than 2^31 input elements");
  // Reused from call to call: fresh ones cost more in page faults than the walk itself.
  thread_local std::vector<float> best;
  thread_local std::vector<int32_t> at;
  const size_t outputs = g.batch * g.outSize();
  if (best.size() < outputs) best.resize(outputs);
  if (at.size() < outputs) at.resize(outputs);
  windowMaxima(g, x.data, best.data(), at.data());
  std::fill(dx.data, dx.data + g.batch * g.inSize(), 0.0f);
  for (size_t k = 0; k < outputs; k++)
    if (at[k] >= 0) dx.data[at[k]] += dy.data[k];
  return info.Env().Undefined();
}

}  // namespace

void caviar::RegisterPool(Napi::Env env, Napi::Object exports) {
  exports.Set("avgPool", Napi::Function::New(env, AvgPool));
  exports.Set("avgPoolGrad", Napi::Function::New(env, AvgPoolGrad));
  exports.Set("maxPool", Napi::Function::New(env, MaxPool));
  exports.Set("maxPoolGrad", Napi::Function::New(env, MaxPoolGrad));
}
