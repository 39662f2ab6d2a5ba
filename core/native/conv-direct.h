// Direct NHWC convolutions for inputs with few channels (a network's first layer on gray or RGB
// images), where im2col + sgemm is a skinny product (K = fH·fW·C of 25 or 75) whose copying
// costs more than the arithmetic.
#pragma once

#include "window-geometry.h"

namespace caviar {

/** Whether convDirect* computes this geometry, and is the faster way to. */
bool convDirectApplies(const Conv& g);

/** y = conv(x, filter) (+ bias) (ReLU); y is overwritten. */
void convDirectForward(const Conv& g, const float* x, const float* filter, const float* bias,
                       bool relu, float* y);

/** dw = the filter's gradient for dy; dw is overwritten. */
void convDirectFilterGrad(const Conv& g, const float* x, const float* dy, float* dw);

}  // namespace caviar
