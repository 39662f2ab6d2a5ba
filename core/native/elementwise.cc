// The light kernels of a training step on the blas backend (worker/blas/light-kernels.ts works
// out their layouts): once the matrix products run on OpenBLAS, these element-wise loops over
// activation-sized arrays are much of what is left of a step, too much to leave to JS. Each
// computes in float what the JS loop computed in double and stored as float, which for +, -, ×,
// ÷ rounds to the same value.
#include "elementwise.h"

#include <napi.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "napi-args.h"
#include "vector-clones.h"

namespace {

using caviar::Floats;
using caviar::floats;
using caviar::integer;
using caviar::need;
using caviar::number;

enum class Op { kAdd = 0, kSub = 1, kMul = 2, kDiv = 3 };

// out[r·cols + c] = a[r·ar + c·ac] op b[r·br + c·bc]: with strides in {0, 1, cols}, every
// broadcast the layouts allow. The inner loop is unit-stride on the output.
template <Op op>
CAVIAR_VECTOR_CLONES void binaryLoop(const float* a, int64_t ar, int64_t ac, const float* b,
                                     int64_t br, int64_t bc, float* __restrict out, int64_t rows,
                                     int64_t cols) {
  for (int64_t r = 0; r < rows; r++) {
    const float* pa = a + r * ar;
    const float* pb = b + r * br;
    float* po = out + r * cols;
    for (int64_t c = 0; c < cols; c++) {
      const float x = pa[c * ac], y = pb[c * bc];
      if constexpr (op == Op::kAdd) po[c] = x + y;
      if constexpr (op == Op::kSub) po[c] = x - y;
      if constexpr (op == Op::kMul) po[c] = x * y;
      if constexpr (op == Op::kDiv) po[c] = x / y;
    }
  }
}

/** a · b + c, or a RangeError where that overflows (sizes come from JS numbers). */
int64_t checkedMulAdd(const Napi::CallbackInfo& info, int64_t a, int64_t b, int64_t c) {
  int64_t product = 0, sum = 0;
  if (__builtin_mul_overflow(a, b, &product) || __builtin_add_overflow(product, c, &sum)) {
    throw Napi::RangeError::New(info.Env(), "array sizes overflow");
  }
  return sum;
}

/** The highest element index a walk of rows × cols with strides (row, col) reads. */
int64_t lastIndex(const Napi::CallbackInfo& info, int64_t rows, int64_t cols, int64_t row,
                  int64_t col) {
  return checkedMulAdd(info, rows - 1, row, checkedMulAdd(info, cols - 1, col, 0));
}

/** binary(op, rows, cols, a, aRow, aCol, b, bRow, bCol, out); op: 0 add, 1 sub, 2 mul, 3 div. */
Napi::Value Binary(const Napi::CallbackInfo& info) {
  const int64_t op = integer(info, 0, "op");
  const int64_t rows = integer(info, 1, "rows"), cols = integer(info, 2, "cols");
  Floats a = floats(info, 3, "a");
  const int64_t ar = integer(info, 4, "aRow"), ac = integer(info, 5, "aCol");
  Floats b = floats(info, 6, "b");
  const int64_t br = integer(info, 7, "bRow"), bc = integer(info, 8, "bCol");
  Floats out = floats(info, 9, "out");
  if (op > 3) throw Napi::RangeError::New(info.Env(), "op must be 0..3");
  if (rows == 0 || cols == 0) return info.Env().Undefined();
  need(info, a, static_cast<size_t>(lastIndex(info, rows, cols, ar, ac)) + 1, "a");
  need(info, b, static_cast<size_t>(lastIndex(info, rows, cols, br, bc)) + 1, "b");
  need(info, out, static_cast<size_t>(checkedMulAdd(info, rows, cols, 0)), "out");
  switch (static_cast<Op>(op)) {
    case Op::kAdd:
      binaryLoop<Op::kAdd>(a.data, ar, ac, b.data, br, bc, out.data, rows, cols);
      break;
    case Op::kSub:
      binaryLoop<Op::kSub>(a.data, ar, ac, b.data, br, bc, out.data, rows, cols);
      break;
    case Op::kMul:
      binaryLoop<Op::kMul>(a.data, ar, ac, b.data, br, bc, out.data, rows, cols);
      break;
    case Op::kDiv:
      binaryLoop<Op::kDiv>(a.data, ar, ac, b.data, br, bc, out.data, rows, cols);
      break;
  }
  return info.Env().Undefined();
}

CAVIAR_VECTOR_CLONES void reluLoop(const float* __restrict x, float* __restrict out, size_t n) {
  // NaN stays NaN, as tfjs's cpu ReLU keeps it.
  for (size_t i = 0; i < n; i++) out[i] = x[i] < 0 ? 0.0f : x[i];
}

CAVIAR_VECTOR_CLONES void stepLoop(const float* __restrict x, float* __restrict out, size_t n,
                                   float alpha) {
  // NaN passes through, as tfjs's cpu Step does.
  for (size_t i = 0; i < n; i++) out[i] = x[i] > 0 ? 1.0f : (x[i] != x[i] ? x[i] : alpha);
}

/** relu(x, out) */
Napi::Value Relu(const Napi::CallbackInfo& info) {
  Floats x = floats(info, 0, "x"), out = floats(info, 1, "out");
  need(info, out, x.length, "out");
  reluLoop(x.data, out.data, x.length);
  return info.Env().Undefined();
}

/** step(x, alpha, out): 1 where x > 0, alpha elsewhere. */
Napi::Value Step(const Napi::CallbackInfo& info) {
  Floats x = floats(info, 0, "x");
  const double alpha = number(info, 1, "alpha");
  Floats out = floats(info, 2, "out");
  need(info, out, x.length, "out");
  stepLoop(x.data, out.data, x.length, static_cast<float>(alpha));
  return info.Env().Undefined();
}

CAVIAR_VECTOR_CLONES void sumLeadingLoop(const float* __restrict x, double* __restrict acc,
                                         int64_t reduced, int64_t kept) {
  for (int64_t r = 0; r < reduced; r++) {
    const float* row = x + r * kept;
    for (int64_t c = 0; c < kept; c++) acc[c] += row[c];
  }
}

/**
 * sum(x, reduced, kept, leading, out): x is reduced × kept (leading: sum over the rows, giving
 * kept values) or kept × reduced (trailing: sum along each row). In double, in index order.
 */
Napi::Value Sum(const Napi::CallbackInfo& info) {
  Floats x = floats(info, 0, "x");
  const int64_t reduced = integer(info, 1, "reduced"), kept = integer(info, 2, "kept");
  const bool leading = info[3].ToBoolean().Value();
  Floats out = floats(info, 4, "out");
  need(info, x, static_cast<size_t>(checkedMulAdd(info, reduced, kept, 0)), "x");
  need(info, out, static_cast<size_t>(kept), "out");
  if (leading) {
    std::vector<double> acc(static_cast<size_t>(kept), 0.0);
    sumLeadingLoop(x.data, acc.data(), reduced, kept);
    for (int64_t c = 0; c < kept; c++) out.data[c] = static_cast<float>(acc[c]);
  } else {
    for (int64_t r = 0; r < kept; r++) {
      const float* row = x.data + r * reduced;
      double s = 0;
      for (int64_t c = 0; c < reduced; c++) s += row[c];
      out.data[r] = static_cast<float>(s);
    }
  }
  return info.Env().Undefined();
}

}  // namespace

void caviar::RegisterElementwise(Napi::Env env, Napi::Object exports) {
  exports.Set("binary", Napi::Function::New(env, Binary));
  exports.Set("relu", Napi::Function::New(env, Relu));
  exports.Set("step", Napi::Function::New(env, Step));
  exports.Set("sum", Napi::Function::New(env, Sum));
}
