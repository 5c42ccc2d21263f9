// Tropical (max-plus and min-plus) batched matrix products for XLA's CPU backend.
//
// C[b, i, j] = max_k A[b, i, k] + B[b, k, j] (min for min-plus): a GEMM whose
// multiply-add is an add-max. XLA has no such kernel; its fused form (a
// reduce over a broadcast add, contract/backend/semiring.py) is a scalar loop
// nest. Here it is blocked as a BLAS GEMM is (Goto's scheme):
//
// * the work is cut into tiles of kMc rows by kNc columns of one matrix of
//   the batch, shared with XLA's intra-op thread pool (parallel.h);
// * for each slice of kKc contracted indices, the tile's rows of A are packed
//   into panels of MR rows (k-major, so one k's MR values are adjacent) and
//   its columns of B into panels of NR columns (the panel stays in L1 while
//   every A panel streams past it);
// * the micro-kernel keeps an MR x NR block of C in vector registers: per k,
//   NR/L vector loads of B, MR broadcasts of A, MR * NR/L adds and maxes.
//   It is written with GCC vector extensions and compiled three times, for
//   AVX-512 (MR=8, two zmm per row: 16 accumulators), AVX2 (MR=6, two ymm:
//   12) and the baseline (SSE2), picked at run time, so that the wheel stays
//   portable (-O3, no -march).
//
// Integers add as their unsigned type (they wrap as XLA's do, without signed
// overflow being undefined) and compare signed. NaN inputs and the inf - inf
// that an add can make are left to the caller, which knows which rows and
// columns hold them (a vector max does not carry a NaN through).
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#include "order.h"
#include "parallel.h"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

using contract::Identity;
using contract::Parallel;

#define CONTRACT_INLINE inline __attribute__((always_inline))

constexpr int64_t kKc = 256;         // contracted indices per packed slice
constexpr int64_t kParallelMin = 1 << 16;  // multiply-adds below which one thread does all

template <typename T, bool = std::is_integral_v<T>>
struct Wrapping { using type = T; };
template <typename T>
struct Wrapping<T, true> { using type = std::make_unsigned_t<T>; };
template <typename T>
using Wrap = typename Wrapping<T>::type;

// W bytes of T, and of the type T adds in.
template <typename T, int W>
struct Vec {
  typedef T type __attribute__((vector_size(W)));
  typedef Wrap<T> wrap __attribute__((vector_size(W)));
};

// One MR x (NV vectors) block of C: acc <- acc (+) max_k ap[k, r] + bp[k, j],
// acc a row-major MR x NR array (NR = NV * W / sizeof(T)).
template <typename T, bool kMax, int MR, int NV, int W>
CONTRACT_INLINE void Micro(const T* ap, const T* bp, int64_t kc, T* acc) {
  using V = typename Vec<T, W>::type;
  using U = typename Vec<T, W>::wrap;
  constexpr int L = W / sizeof(T);
  V c[MR][NV];
  // Unrolled in full, so that c lives in registers (GCC keeps it on the
  // stack otherwise: 7x slower, measured).
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) std::memcpy(&c[r][v], acc + (r * NV + v) * L, W);
  for (int64_t k = 0; k < kc; ++k) {
    U b[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) std::memcpy(&b[v], bp + (k * NV + v) * L, W);
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      const Wrap<T> x = static_cast<Wrap<T>>(ap[k * MR + r]);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) {
        const V s = (V)(b[v] + x);
        c[r][v] = kMax ? (c[r][v] > s ? c[r][v] : s) : (c[r][v] < s ? c[r][v] : s);
      }
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) std::memcpy(acc + (r * NV + v) * L, &c[r][v], W);
}

struct Problem {
  int64_t m, n, k;
};

// Per-thread packing buffers (parallel.h: kept, unless they grew large).
template <typename T>
struct Scratch {
  std::vector<T> a, b;
};

// One tile: rows [i0, i1) and columns [j0, j1) of one matrix of the batch.
template <typename T, bool kMax, int MR, int NV, int W>
CONTRACT_INLINE void Tile(const T* a, const T* b, T* c, Problem p, int64_t i0, int64_t i1,
                          int64_t j0, int64_t j1) {
  constexpr int NR = NV * W / static_cast<int>(sizeof(T));
  thread_local Scratch<T> scratch;
  const int64_t rows = i1 - i0, cols = j1 - j0;
  const int64_t apanels = (rows + MR - 1) / MR, bpanels = (cols + NR - 1) / NR;
  scratch.a.resize(apanels * MR * kKc);
  scratch.b.resize(bpanels * NR * kKc);
  T* ap = scratch.a.data();
  T* bp = scratch.b.data();
  alignas(64) T acc[MR * NR];
  for (int64_t k0 = 0; k0 < p.k; k0 += kKc) {
    const int64_t kc = std::min(kKc, p.k - k0);
    // Padding rows and columns hold zeros; their results are never stored.
    for (int64_t q = 0; q < bpanels; ++q) {
      T* dst = bp + q * NR * kc;
      const int64_t width = std::min<int64_t>(NR, cols - q * NR);
      for (int64_t k = 0; k < kc; ++k) {
        const T* src = b + (k0 + k) * p.n + j0 + q * NR;
        int64_t j = 0;
        for (; j < width; ++j) dst[k * NR + j] = src[j];
        for (; j < NR; ++j) dst[k * NR + j] = T(0);
      }
    }
    for (int64_t q = 0; q < apanels; ++q) {
      T* dst = ap + q * MR * kc;
      const int64_t height = std::min<int64_t>(MR, rows - q * MR);
      for (int64_t r = 0; r < MR; ++r) {
        const T* src = a + (i0 + q * MR + r) * p.k + k0;
        if (r < height)
          for (int64_t k = 0; k < kc; ++k) dst[k * MR + r] = src[k];
        else
          for (int64_t k = 0; k < kc; ++k) dst[k * MR + r] = T(0);
      }
    }
    for (int64_t qb = 0; qb < bpanels; ++qb) {
      const int64_t jb = j0 + qb * NR, width = std::min<int64_t>(NR, j1 - jb);
      for (int64_t qa = 0; qa < apanels; ++qa) {
        const int64_t ib = i0 + qa * MR, height = std::min<int64_t>(MR, i1 - ib);
        for (int64_t r = 0; r < MR; ++r)
          for (int64_t j = 0; j < NR; ++j)
            acc[r * NR + j] = k0 == 0 || r >= height || j >= width ? Identity<T, kMax>()
                                                                     : c[(ib + r) * p.n + jb + j];
        Micro<T, kMax, MR, NV, W>(ap + qa * MR * kc, bp + qb * NR * kc, kc, acc);
        for (int64_t r = 0; r < height; ++r)
          std::memcpy(c + (ib + r) * p.n + jb, acc + r * NR, width * sizeof(T));
      }
    }
  }
  contract::Trim(scratch.a);
  contract::Trim(scratch.b);
}

// The same tile compiled for each instruction set (the micro-kernel is
// inlined into each, so each gets its own registers and vector width).
#if defined(__x86_64__)
template <typename T, bool kMax>
__attribute__((target("avx512f"))) void TileAvx512(const T* a, const T* b, T* c, Problem p,
                                                   int64_t i0, int64_t i1, int64_t j0, int64_t j1) {
  Tile<T, kMax, 8, 2, 64>(a, b, c, p, i0, i1, j0, j1);
}
template <typename T, bool kMax>
__attribute__((target("avx2"))) void TileAvx2(const T* a, const T* b, T* c, Problem p,
                                              int64_t i0, int64_t i1, int64_t j0, int64_t j1) {
  Tile<T, kMax, 6, 2, 32>(a, b, c, p, i0, i1, j0, j1);
}
#endif
template <typename T, bool kMax>
void TileBase(const T* a, const T* b, T* c, Problem p, int64_t i0, int64_t i1, int64_t j0,
              int64_t j1) {
  Tile<T, kMax, 4, 2, 16>(a, b, c, p, i0, i1, j0, j1);
}

enum class Isa { kBase, kAvx2, kAvx512 };

Isa Detect() {
#if defined(__x86_64__)
  static const Isa isa = __builtin_cpu_supports("avx512f") ? Isa::kAvx512
                         : __builtin_cpu_supports("avx2")  ? Isa::kAvx2
                                                           : Isa::kBase;
  return isa;
#else
  return Isa::kBase;
#endif
}

// a: (..., m, k), b: (..., k, n), out: (..., m, n), the leading dimensions one
// batch in all three (vmap adds leading dimensions to all of them).
template <ffi::DataType D, bool kMax>
ffi::Error TropicalHandler(ffi::ThreadPool pool, ffi::Buffer<D> a, ffi::Buffer<D> b,
                           ffi::ResultBuffer<D> out) {
  using T = ffi::NativeType<D>;
  auto ad = a.dimensions(), bd = b.dimensions(), od = out->dimensions();
  const size_t rank = od.size();
  if (rank < 2 || ad.size() != rank || bd.size() != rank)
    return ffi::Error::InvalidArgument("contract: tropical operands must share a rank >= 2");
  int64_t batch = 1;
  for (size_t d = 0; d + 2 < rank; ++d) {
    if (ad[d] != od[d] || bd[d] != od[d])
      return ffi::Error::InvalidArgument("contract: tropical batch dimensions differ");
    batch *= od[d];
  }
  const Problem p{od[rank - 2], od[rank - 1], ad[rank - 1]};
  if (ad[rank - 2] != p.m || bd[rank - 2] != p.k || bd[rank - 1] != p.n)
    return ffi::Error::InvalidArgument("contract: tropical operand shapes do not match");
  T* c = out->typed_data();
  if (batch * p.m * p.n == 0) return ffi::Error::Success();
  if (p.k == 0) {
    std::fill(c, c + batch * p.m * p.n, Identity<T, kMax>());
    return ffi::Error::Success();
  }
  const Isa isa = Detect();
  // Tiles: about 96 rows by 256 columns (a multiple of every MR and NR),
  // fewer rows when there are too few tiles to share.
  const int64_t mc = 96, nc = 256;
  const int64_t mt = (p.m + mc - 1) / mc, nt = (p.n + nc - 1) / nc;
  const T* ad_ = a.typed_data();
  const T* bd_ = b.typed_data();
  Parallel(pool, kParallelMin, batch * mt * nt, batch * p.m * p.n * p.k, [&](int64_t item) {
    const int64_t bi = item / (mt * nt), ti = item / nt % mt, tj = item % nt;
    const T* x = ad_ + bi * p.m * p.k;
    const T* y = bd_ + bi * p.k * p.n;
    T* z = c + bi * p.m * p.n;
    const int64_t i0 = ti * mc, i1 = std::min(p.m, i0 + mc);
    const int64_t j0 = tj * nc, j1 = std::min(p.n, j0 + nc);
#if defined(__x86_64__)
    if (isa == Isa::kAvx512) return TileAvx512<T, kMax>(x, y, z, p, i0, i1, j0, j1);
    if (isa == Isa::kAvx2) return TileAvx2<T, kMax>(x, y, z, p, i0, i1, j0, j1);
#endif
    TileBase<T, kMax>(x, y, z, p, i0, i1, j0, j1);
  });
  return ffi::Error::Success();
}

}  // namespace

#define CONTRACT_TROPICAL(name, D, kMax)                                          \
  XLA_FFI_DEFINE_HANDLER_SYMBOL(name, (TropicalHandler<D, kMax>),                 \
                                ffi::Ffi::Bind()                                  \
                                    .Ctx<ffi::ThreadPool>()                       \
                                    .Arg<ffi::Buffer<D>>()                        \
                                    .Arg<ffi::Buffer<D>>()                        \
                                    .Ret<ffi::Buffer<D>>());

CONTRACT_TROPICAL(contract_maxplus_f32, ffi::F32, true)
CONTRACT_TROPICAL(contract_maxplus_f64, ffi::F64, true)
CONTRACT_TROPICAL(contract_maxplus_s32, ffi::S32, true)
CONTRACT_TROPICAL(contract_maxplus_s64, ffi::S64, true)
CONTRACT_TROPICAL(contract_minplus_f32, ffi::F32, false)
CONTRACT_TROPICAL(contract_minplus_f64, ffi::F64, false)
CONTRACT_TROPICAL(contract_minplus_s32, ffi::S32, false)
CONTRACT_TROPICAL(contract_minplus_s64, ffi::S64, false)
