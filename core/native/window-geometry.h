// The geometry of a 2-D NHWC window walk (a convolution, a pooling), as tfjs's computeConv2DInfo
// and computePool2DInfo resolve it and worker/blas/kernels.ts's convDims lays it out.
#pragma once

#include <napi.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>

namespace caviar {

// im2col scratch is cut into chunks of whole images of at most this many floats (16 MiB), so a
// large batch does not allocate a huge matrix and each chunk stays near the caches.
constexpr size_t kChunkFloats = size_t{1} << 20;

/** A 2-D NHWC convolution's geometry, as tfjs's computeConv2DInfo resolves it. */
struct Conv {
  int64_t batch, inH, inW, inC, outH, outW, outC, fH, fW, strideH, strideW, dilH, dilW, padTop,
      padLeft;

  int64_t patch() const { return fH * fW * inC; }        // K: one row of the im2col matrix
  int64_t pixels() const { return outH * outW; }         // im2col rows per image
  int64_t inSize() const { return inH * inW * inC; }     // floats per input image
  int64_t outSize() const { return pixels() * outC; }    // floats per output image
  bool direct() const {                                  // the input already is the im2col matrix
    return fH == 1 && fW == 1 && strideH == 1 && strideW == 1 && padTop == 0 && padLeft == 0 &&
           outH == inH && outW == inW;
  }
  /** Images per im2col chunk: at least one, at most kChunkFloats floats of scratch. */
  int64_t chunk() const {
    const int64_t per = std::max<int64_t>(1, pixels() * patch());
    return std::max<int64_t>(1, std::min<int64_t>(batch, kChunkFloats / per));
  }
};

inline Conv conv(const Napi::CallbackInfo& info, size_t i) {
  if (!info[i].IsTypedArray() ||
      info[i].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array ||
      info[i].As<Napi::Int32Array>().ElementLength() != 15) {
    throw Napi::TypeError::New(info.Env(), "conv dims must be an Int32Array of 15");
  }
  const int32_t* d = info[i].As<Napi::Int32Array>().Data();
  for (int j = 0; j < 13; j++) {
    if (d[j] < 0 || (j >= 7 && d[j] == 0))
      throw Napi::RangeError::New(info.Env(), "bad conv dims");
  }
  return {d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7], d[8], d[9], d[10], d[11], d[12], d[13],
          d[14]};
}

}  // namespace caviar
