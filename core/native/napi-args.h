// Argument checks shared by the addon's functions: a caller's mistake becomes a JS exception
// (TypeError or RangeError), never a read or write out of bounds.
#pragma once

#include <napi.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace caviar {

struct Floats {
  float* data;
  size_t length;
};

inline Floats floats(const Napi::CallbackInfo& info, size_t i, const char* name) {
  Napi::Value v = info[i];
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
    throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a Float32Array");
  }
  auto a = v.As<Napi::Float32Array>();
  return {a.Data(), a.ElementLength()};
}

inline int64_t integer(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (!info[i].IsNumber()) {
    throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a number");
  }
  int64_t n = info[i].As<Napi::Number>().Int64Value();
  if (n < 0) throw Napi::RangeError::New(info.Env(), std::string(name) + " must be >= 0");
  return n;
}

inline double number(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (!info[i].IsNumber()) {
    throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a number");
  }
  return info[i].As<Napi::Number>().DoubleValue();
}

inline void need(const Napi::CallbackInfo& info, const Floats& f, size_t length, const char* name) {
  if (f.length < length) {
    throw Napi::RangeError::New(info.Env(), std::string(name) + " holds " +
                                                std::to_string(f.length) + " floats, needs " +
                                                std::to_string(length));
  }
}

}  // namespace caviar
