#pragma GCC optimize("fp-contract=fast")
#include "conv-direct.h"

#include <algorithm>
#include <cstdint>
#include <vector>

#include "vector-clones.h"

namespace caviar {

namespace {

// The input image is laid out planar ([channel][row][column]) with its padding as zeros, and
// outputs are computed on the padded grid (a few columns too many, dropped on the way out): then
// for stride 1 a filter tap's contribution to a whole band of output rows is one contiguous
// multiply-add, long enough to vectorize well, with no bounds tested inside.
constexpr int64_t kMaxChannels = 4;
// Accumulators of one band of output rows, all channels: a quarter MiB, near the caches.
constexpr int64_t kBandFloats = int64_t{1} << 16;

struct PaddedGrid {
  int64_t width, height, bandRows;

  explicit PaddedGrid(const Conv& g)
      : width(g.outW - 1 + g.fW),
        height(g.outH - 1 + g.fH),
        bandRows(std::max<int64_t>(1, std::min(g.outH, kBandFloats / (g.outC * width)))) {}

  // Slack after the last row: the padded-grid columns past outW read up to fW - 1 beyond it.
  int64_t planeFloats() const { return height * width; }
  int64_t imageFloats(const Conv& g) const { return g.inC * planeFloats() + width; }
};

void fillPlanar(const Conv& g, const PaddedGrid& grid, const float* img, float* planar) {
  std::fill(planar, planar + grid.imageFloats(g), 0.0f);
  for (int64_t h = 0; h < g.inH; h++) {
    const int64_t row = h + g.padTop;
    if (row < 0 || row >= grid.height) continue;
    for (int64_t w = 0; w < g.inW; w++) {
      const int64_t col = w + g.padLeft;
      if (col < 0 || col >= grid.width) continue;
      for (int64_t c = 0; c < g.inC; c++)
        planar[c * grid.planeFloats() + row * grid.width + col] = img[(h * g.inW + w) * g.inC + c];
    }
  }
}

}  // namespace

bool convDirectApplies(const Conv& g) {
  return g.inC <= kMaxChannels && g.strideH == 1 && g.strideW == 1 && g.dilH == 1 &&
         g.dilW == 1 && g.padTop >= 0 && g.padLeft >= 0;
}

CAVIAR_VECTOR_CLONES void convDirectForward(
    const Conv& g, const float* x, const float* filter, const float* bias, bool relu, float* y) {
  const int64_t C = g.inC, O = g.outC, W = g.outW;
  const PaddedGrid grid(g);
  std::vector<float> planar(grid.imageFloats(g));
  std::vector<float> acc(O * grid.bandRows * grid.width);
  for (int64_t n = 0; n < g.batch; n++) {
    fillPlanar(g, grid, x + n * g.inSize(), planar.data());
    for (int64_t oh0 = 0; oh0 < g.outH; oh0 += grid.bandRows) {
      const int64_t rows = std::min(grid.bandRows, g.outH - oh0);
      const int64_t len = rows * grid.width;
      std::fill(acc.begin(), acc.end(), 0.0f);
      for (int64_t i = 0; i < g.fH; i++)
        for (int64_t j = 0; j < g.fW; j++)
          for (int64_t c = 0; c < C; c++) {
            const float* xs = planar.data() + c * grid.planeFloats() + (oh0 + i) * grid.width + j;
            const float* w = filter + ((i * g.fW + j) * C + c) * O;
            for (int64_t o = 0; o < O; o++) {
              float* a = acc.data() + o * len;
              const float wo = w[o];
              for (int64_t k = 0; k < len; k++) a[k] += wo * xs[k];
            }
          }
      for (int64_t r = 0; r < rows; r++) {
        float* out = y + ((n * g.outH + oh0 + r) * W) * O;
        for (int64_t ow = 0; ow < W; ow++)
          for (int64_t o = 0; o < O; o++) {
            const float v = acc[o * len + r * grid.width + ow] + (bias ? bias[o] : 0.0f);
            out[ow * O + o] = relu && v < 0.0f ? 0.0f : v;
          }
      }
    }
  }
}

CAVIAR_VECTOR_CLONES void convDirectFilterGrad(
    const Conv& g, const float* x, const float* dy, float* dw) {
  const int64_t C = g.inC, O = g.outC, W = g.outW;
  const PaddedGrid grid(g);
  std::vector<float> planar(grid.imageFloats(g));
  // dy of one band, planar on the padded grid; the extra columns stay zero and add nothing.
  std::vector<float> dyBand(O * grid.bandRows * grid.width);
  std::vector<double> sums(g.fH * g.fW * C * O, 0.0);
  constexpr int64_t kLanes = 16;
  for (int64_t n = 0; n < g.batch; n++) {
    fillPlanar(g, grid, x + n * g.inSize(), planar.data());
    for (int64_t oh0 = 0; oh0 < g.outH; oh0 += grid.bandRows) {
      const int64_t rows = std::min(grid.bandRows, g.outH - oh0);
      const int64_t len = rows * grid.width;
      std::fill(dyBand.begin(), dyBand.end(), 0.0f);
      for (int64_t r = 0; r < rows; r++) {
        const float* d = dy + ((n * g.outH + oh0 + r) * W) * O;
        for (int64_t ow = 0; ow < W; ow++)
          for (int64_t o = 0; o < O; o++) dyBand[o * len + r * grid.width + ow] = d[ow * O + o];
      }
      for (int64_t i = 0; i < g.fH; i++)
        for (int64_t j = 0; j < g.fW; j++)
          for (int64_t c = 0; c < C; c++) {
            const float* xs = planar.data() + c * grid.planeFloats() + (oh0 + i) * grid.width + j;
            double* s = sums.data() + ((i * g.fW + j) * C + c) * O;
            for (int64_t o = 0; o < O; o++) {
              // Lane-wise partial sums: a plain reduction would not vectorize without
              // reassociating.
              const float* d = dyBand.data() + o * len;
              float lanes[kLanes] = {};
              int64_t k = 0;
              for (; k + kLanes <= len; k += kLanes)
                for (int64_t l = 0; l < kLanes; l++) lanes[l] += xs[k + l] * d[k + l];
              float tail = 0.0f;
              for (; k < len; k++) tail += xs[k] * d[k];
              float total = tail;
              for (int64_t l = 0; l < kLanes; l++) total += lanes[l];
              s[o] += total;
            }
          }
    }
  }
  for (size_t t = 0; t < sums.size(); t++) dw[t] = static_cast<float>(sums[t]);
}

}  // namespace caviar
