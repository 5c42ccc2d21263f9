// 2-D convolution (cross-correlation, NCHW x OIHW -> NCHW) for XLA's CPU
// backend: the patches of a block of output rows gathered into a buffer that
// stays in cache, then one BLAS GEMM from that buffer straight into the
// output's rows.
//
// An im2col patches matrix for the whole batch is as large as the input
// times the taps (a 3x3 convolution of (32,16,32,32): 18.9 MB for a 2.1 MB
// input), and writing then reading it back cost as much as the GEMM itself
// (docs/lowering.md). Here a task gathers the patches of its own rows only
// (at most kPatchBytes), so the GEMM reads them from L2 and the whole call
// moves the input and the output through memory once each.
//
// Row-major as in gemm.cc: for image i, out_i (O x L) = w (O x K) * P (K x L)
// with K = C * kH * kW taps and L = oH * oW output pixels; read column-major
// that is out_i^T = P^T w^T, so BLAS is called with P first, no transposes.
//
// Leading dimensions before N (x) and O (w) are a batch (vmap adds them to
// both, broadcast): group g uses w[g] for the images x[g].
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "blas.h"
#include "parallel.h"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

constexpr int64_t kPatchBytes = int64_t{1} << 20;  // a task's patches: an L2's worth
constexpr int64_t kParallelMinMacs = 1 << 18;      // below: one thread

struct Geometry {
  int64_t groups = 1, n = 0, c = 0, h = 0, w = 0;  // x: (groups..., n, c, h, w)
  int64_t o = 0, kh = 0, kw = 0;                   // w: (groups..., o, c, kh, kw)
  int64_t oh = 0, ow = 0;                          // out: (groups..., n, o, oh, ow)
  int64_t sh = 1, sw = 1, ph = 0, pw = 0;
};

// First and one-past-last output column whose tap q reads inside the row.
inline void Columns(const Geometry& g, int64_t q, int64_t& lo, int64_t& hi) {
  // Column ow reads iw = ow * sw + q - pw, valid for 0 <= iw < w.
  const int64_t shift = g.pw - q;
  lo = shift > 0 ? (shift + g.sw - 1) / g.sw : 0;
  hi = g.w - 1 + shift >= 0 ? std::min(g.ow, (g.w - 1 + shift) / g.sw + 1) : 0;
  lo = std::min(lo, hi);
}

// The patches of output rows [r0, r0 + rows) of image `img` (its channels at
// x): row (c, p, q) of `patch` holds x[c, oh * sh + p - ph, ow * sw + q - pw]
// for each output pixel of those rows, zero where that is padding.
template <typename E>
void Gather(const Geometry& g, const E* x, int64_t r0, int64_t rows, E* patch) {
  const int64_t cols = rows * g.ow;
  for (int64_t c = 0; c < g.c; ++c)
    for (int64_t p = 0; p < g.kh; ++p)
      for (int64_t q = 0; q < g.kw; ++q) {
        E* dst = patch + ((c * g.kh + p) * g.kw + q) * cols;
        int64_t lo, hi;
        Columns(g, q, lo, hi);
        for (int64_t r = 0; r < rows; ++r, dst += g.ow) {
          const int64_t ih = (r0 + r) * g.sh + p - g.ph;
          if (ih < 0 || ih >= g.h || lo == hi) {
            std::fill(dst, dst + g.ow, E(0));
            continue;
          }
          const E* src = x + (c * g.h + ih) * g.w + q - g.pw;
          std::fill(dst, dst + lo, E(0));
          if (g.sw == 1) {
            std::memcpy(dst + lo, src + lo, static_cast<size_t>(hi - lo) * sizeof(E));
          } else {
            for (int64_t ow = lo; ow < hi; ++ow) dst[ow] = src[ow * g.sw];
          }
          std::fill(dst + hi, dst + g.ow, E(0));
        }
      }
}

template <typename X, typename W, typename O>
ffi::Error ReadGeometry(const X& x, const W& w, O& out, int64_t sh, int64_t sw, int64_t ph,
                        int64_t pw, Geometry& g) {
  auto xd = x.dimensions(), wd = w.dimensions(), od = out->dimensions();
  const size_t r = xd.size();
  if (r < 4 || wd.size() != r || od.size() != r)
    return ffi::Error::InvalidArgument("contract: conv operands must share a rank >= 4");
  for (size_t i = 0; i + 4 < r; ++i) {
    if (wd[i] != xd[i] || od[i] != xd[i])
      return ffi::Error::InvalidArgument("contract: conv batch dimensions differ");
    g.groups *= xd[i];
  }
  g.n = xd[r - 4], g.c = xd[r - 3], g.h = xd[r - 2], g.w = xd[r - 1];
  g.o = wd[r - 4], g.kh = wd[r - 2], g.kw = wd[r - 1];
  g.oh = od[r - 2], g.ow = od[r - 1];
  g.sh = sh, g.sw = sw, g.ph = ph, g.pw = pw;
  if (wd[r - 3] != g.c || od[r - 4] != g.n || od[r - 3] != g.o || sh < 1 || sw < 1)
    return ffi::Error::InvalidArgument("contract: conv shapes disagree");
  if (g.o > INT32_MAX || g.c * g.kh * g.kw > INT32_MAX || g.oh * g.ow > INT32_MAX)
    return ffi::Error::InvalidArgument("contract: conv dimension over 2^31");
  return ffi::Error::Success();
}

template <ffi::DataType T>
ffi::Error Conv(ffi::ThreadPool pool, ffi::Buffer<T> x, ffi::Buffer<T> w,
                ffi::ResultBuffer<T> out, int64_t stride_h, int64_t stride_w, int64_t pad_h,
                int64_t pad_w) {
  using E = ffi::NativeType<T>;
  contract::Gemm* gemm = contract::gemm_fns[contract::kSlot<T>];
  if (gemm == nullptr) return ffi::Error::InvalidArgument("contract: BLAS gemm not loaded");
  Geometry g;
  if (auto e = ReadGeometry(x, w, out, stride_h, stride_w, pad_h, pad_w, g); e.failure())
    return e;
  const int64_t k = g.c * g.kh * g.kw, l = g.oh * g.ow, images = g.groups * g.n;
  E* op = static_cast<E*>(out->untyped_data());
  if (images * g.o * l == 0) return ffi::Error::Success();
  if (k == 0) {
    std::fill(op, op + images * g.o * l, E(0));
    return ffi::Error::Success();
  }
  const E* xp = static_cast<const E*>(x.untyped_data());
  const E* wp = static_cast<const E*>(w.untyped_data());
  // Output rows per task: patches within kPatchBytes (one row at least), and
  // enough tasks to keep every worker busy when the batch alone does not.
  const int64_t workers = std::max<int64_t>(1, pool.num_threads());
  int64_t block = std::clamp<int64_t>(kPatchBytes / (k * g.ow * sizeof(E)), 1, g.oh);
  while (block > 1 && images * ((g.oh + block - 1) / block) < 2 * workers) block = (block + 1) / 2;
  const int64_t parts = (g.oh + block - 1) / block;
  const int oi = static_cast<int>(g.o), ki = static_cast<int>(k), li = static_cast<int>(l);
  const E one(1), zero(0);
  // A 1x1 kernel, stride 1, no padding: patch row c is channel c of the image
  // (a gather would be a plain copy: 25% slower on (8,64,56,56) x (64,64,1,1)).
  const bool pointwise = k == g.c && g.sh == 1 && g.sw == 1 && g.ph == 0 && g.pw == 0;
  auto task = [&](int64_t t) {
    const int64_t img = t / parts, r0 = t % parts * block, rows = std::min(block, g.oh - r0);
    const int cols = static_cast<int>(rows * g.ow);
    const E* wg = wp + img / g.n * g.o * k;
    E* c = op + img * g.o * l + r0 * g.ow;
    const E* image = xp + img * g.c * g.h * g.w;
    if (pointwise) {  // the image's rows are its patches already: no copy
      gemm("N", "N", &cols, &oi, &ki, &one, image + r0 * g.w, &li, wg, &ki, &zero, c, &li);
      return;
    }
    thread_local std::vector<E> patch;  // see contract::Trim
    patch.resize(static_cast<size_t>(k * rows * g.ow));
    Gather(g, image, r0, rows, patch.data());
    gemm("N", "N", &cols, &oi, &ki, &one, patch.data(), &cols, wg, &ki, &zero, c, &li);
    contract::Trim(patch);
  };
  const int64_t items = images * parts;
  if (contract::set_local_threads == nullptr) {  // OpenBLAS: its own threads in each GEMM
    for (int64_t t = 0; t < items; ++t) task(t);
    return ffi::Error::Success();
  }
  contract::Parallel(
      pool, kParallelMinMacs, items, images * g.o * l * k,
      [&](int64_t t) {
        const int previous = contract::set_local_threads(1);
        task(t);
        contract::set_local_threads(previous);
      },
      workers - 1);  // the calling thread is the last worker
  return ffi::Error::Success();
}

}  // namespace

#define CONTRACT_CONV(name, T)                                \
  XLA_FFI_DEFINE_HANDLER_SYMBOL(name, Conv<T>,                \
                                ffi::Ffi::Bind()              \
                                    .Ctx<ffi::ThreadPool>()   \
                                    .Arg<ffi::Buffer<T>>()    \
                                    .Arg<ffi::Buffer<T>>()    \
                                    .Ret<ffi::Buffer<T>>()    \
                                    .Attr<int64_t>("stride_h") \
                                    .Attr<int64_t>("stride_w") \
                                    .Attr<int64_t>("pad_h")   \
                                    .Attr<int64_t>("pad_w"));

CONTRACT_CONV(contract_conv_f32, ffi::F32)
CONTRACT_CONV(contract_conv_f64, ffi::F64)
