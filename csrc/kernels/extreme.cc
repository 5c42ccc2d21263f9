// Max and min reductions over one run of adjacent axes, for XLA's CPU
// backend (contract/backend/extreme.py: contract.amax/amin, and the ⊕ of a
// label that a max-plus, min-plus or max-product einsum drops).
//
// The input is seen as (outer, r, inner) and reduced over r:
//
// * inner == 1 (the run is the trailing axes): rows, each read once with
//   four vector accumulators; few long rows (a full reduction) are cut into
//   segments, so that every thread has work, and the segments' results
//   folded.
// * inner > 1: a block of kBlock columns of the output (and of its running
//   sums) stays in L1 while the r input rows stream past it, four rows per
//   pass over it (2048² over axis 0: 0.75-0.95x XLA's reduce, 0.4-0.6x
//   torch's, bench/RESULTS.md).
//
// Both are bound by the bandwidth of the cache the input sits in, so the
// loops are AVX2 wide even where AVX-512 exists: on this 2-core Zen 4 (which
// splits 512-bit loads) a row reduction of 2048² float32 held in L3 took
// 230-250 µs on one thread with AVX2, 270-400 µs with AVX-512, and prefetch
// hints only slowed it. Two threads share the work, not three: XLA's pool
// has as many threads as cores and the calling thread works too (a third
// thread on two cores stalled whole items, measured).
//
// NaN propagates (NumPy's and torch's rule, and what JAX documents; XLA's
// CPU reduce drops it). The loops keep a running sum beside the maxima (one
// more vector add, no slower here): a NaN anywhere makes the sum NaN, and
// such a row or column (or one whose sum met inf - inf) is reduced again by
// the exact scalar rule. Integers compare as themselves (exact). Picked at
// run time (the wheel stays portable: -O3, no -march).
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

constexpr int64_t kParallelMin = 1 << 15;  // elements below which one thread does all
constexpr int64_t kItem = 1 << 19;         // elements per work item at most (2-4 MiB)
constexpr int64_t kBlock = 512;            // columns per block (out and sums in L1)

// c (+) x: c stays if it is NaN or x does not beat it (a NaN x never "does
// not beat" c, so a NaN wins and then stays).
template <bool kMax, typename T>
CONTRACT_INLINE T Pick(T c, T x) {
  const bool keep = (c != c) || (kMax ? x <= c : x >= c);
  return keep ? c : x;
}

template <typename T, int W>
struct Vec {
  typedef T type __attribute__((vector_size(W)));
  typedef std::conditional_t<sizeof(T) == 4, int32_t, int64_t> lane;
  typedef lane mask __attribute__((vector_size(W)));  // shuffle indices
};

// The exact rule, one element at a time.
template <typename T, bool kMax>
CONTRACT_INLINE T Scalar(const T* x, int64_t n) {
  T out = Identity<T, kMax>();
  for (int64_t i = 0; i < n; ++i) out = Pick<kMax>(out, x[i]);
  return out;
}

// The reduction of x[0..n): four vector accumulators, each a plain compare
// and select (vmaxps), and for floats four running sums that reveal a NaN.
// (A select on two ORed compares would keep a NaN in one pass, but GCC
// splits that form into scalars when it is inlined from a template without
// the caller's target attribute: 40x slower, measured.)
template <typename T, bool kMax, int W>
CONTRACT_INLINE T Row(const T* x, int64_t n) {
  using V = typename Vec<T, W>::type;
  constexpr int L = W / sizeof(T), U = 4;
  constexpr bool kFloat = std::is_floating_point_v<T>;
  V c[U], sum[U];
  for (int u = 0; u < U; ++u)
    for (int l = 0; l < L; ++l) c[u][l] = Identity<T, kMax>(), sum[u][l] = T(0);
  int64_t i = 0;
  for (; i + U * L <= n; i += U * L) {
#pragma GCC unroll 4
    for (int u = 0; u < U; ++u) {
      V v;
      std::memcpy(&v, x + i + u * L, W);
      c[u] = (kMax ? v > c[u] : v < c[u]) ? v : c[u];
      if constexpr (kFloat) sum[u] += v;
    }
  }
  for (; i + L <= n; i += L) {
    V v;
    std::memcpy(&v, x + i, W);
    c[0] = (kMax ? v > c[0] : v < c[0]) ? v : c[0];
    if constexpr (kFloat) sum[0] += v;
  }
  // Folded as vectors, the lanes by a butterfly of shuffles: per 2048-float
  // row, a scalar fold of the lanes cost as much as a tenth of the loads.
#pragma GCC unroll 4
  for (int u = 1; u < U; ++u) {
    c[0] = (kMax ? c[u] > c[0] : c[u] < c[0]) ? c[u] : c[0];
    if constexpr (kFloat) sum[0] += sum[u];
  }
  using M = typename Vec<T, W>::mask;
#pragma GCC unroll 8
  for (int step = L / 2; step > 0; step /= 2) {
    M swap;
    for (int l = 0; l < L; ++l) swap[l] = l ^ step;
    const V d = __builtin_shuffle(c[0], swap);
    c[0] = (kMax ? d > c[0] : d < c[0]) ? d : c[0];
    if constexpr (kFloat) sum[0] += __builtin_shuffle(sum[0], swap);
  }
  T out = c[0][0];
  const T total = sum[0][0];
  if constexpr (kFloat)
    if (total != total) return Scalar<T, kMax>(x, n);
  for (; i < n; ++i) out = Pick<kMax>(out, x[i]);
  return out;
}

// out[j] = the reduction over q < r of x[q * stride + j], for j < n <= kBlock.
// The block of out (and of the running sums that reveal a NaN, as in Row)
// stays in L1 while the rows stream past it, four rows per pass over it; a
// column whose sum is NaN is reduced again by the exact rule.
template <typename T, bool kMax, int W>
CONTRACT_INLINE void Columns(const T* x, int64_t r, int64_t stride, int64_t n, T* out) {
  using V = typename Vec<T, W>::type;
  constexpr int L = W / sizeof(T);
  constexpr bool kFloat = std::is_floating_point_v<T>;
  alignas(64) T sum[kBlock];
  std::memcpy(out, x, n * sizeof(T));
  if constexpr (kFloat) std::memcpy(sum, x, n * sizeof(T));
  for (int64_t q = 1; q < r; q += 4) {
    const int rows = static_cast<int>(std::min<int64_t>(4, r - q));
    const T* row = x + q * stride;
    int64_t j = 0;
    for (; j + L <= n; j += L) {
      V c, t, v;
      std::memcpy(&c, out + j, W);
      if constexpr (kFloat) std::memcpy(&t, sum + j, W);
      for (int k = 0; k < rows; ++k) {
        std::memcpy(&v, row + k * stride + j, W);
        c = (kMax ? v > c : v < c) ? v : c;
        if constexpr (kFloat) t += v;
      }
      std::memcpy(out + j, &c, W);
      if constexpr (kFloat) std::memcpy(sum + j, &t, W);
    }
    for (; j < n; ++j)
      for (int k = 0; k < rows; ++k) {
        const T v = row[k * stride + j];
        out[j] = (kMax ? v > out[j] : v < out[j]) ? v : out[j];
        if constexpr (kFloat) sum[j] += v;
      }
  }
  if constexpr (kFloat)
    for (int64_t j = 0; j < n; ++j)
      if (sum[j] != sum[j]) {
        T exact = Identity<T, kMax>();
        for (int64_t q = 0; q < r; ++q) exact = Pick<kMax>(exact, x[q * stride + j]);
        out[j] = exact;
      }
}

#if defined(__x86_64__)
template <typename T, bool kMax>
__attribute__((target("avx2"))) T RowAvx2(const T* x, int64_t n) {
  return Row<T, kMax, 32>(x, n);
}
template <typename T, bool kMax>
__attribute__((target("avx2"))) void ColumnsAvx2(const T* x, int64_t r, int64_t s, int64_t n,
                                                 T* out) {
  Columns<T, kMax, 32>(x, r, s, n, out);
}

bool HasAvx2() {
  static const bool avx2 = __builtin_cpu_supports("avx2");
  return avx2;
}
#endif

template <typename T, bool kMax>
T RowAny(const T* x, int64_t n) {
#if defined(__x86_64__)
  if (HasAvx2()) return RowAvx2<T, kMax>(x, n);
#endif
  return Row<T, kMax, 16>(x, n);
}

template <typename T, bool kMax>
void ColumnsAny(const T* x, int64_t r, int64_t s, int64_t n, T* out) {
#if defined(__x86_64__)
  if (HasAvx2()) return ColumnsAvx2<T, kMax>(x, r, s, n, out);
#endif
  Columns<T, kMax, 16>(x, r, s, n, out);
}

// x: (..., r, inner), out: (..., inner): the reduction over r (r >= 1; the
// caller gives the identity for r == 0 itself).
template <ffi::DataType D, bool kMax>
ffi::Error ExtremeHandler(ffi::ThreadPool pool, ffi::Buffer<D> x, ffi::ResultBuffer<D> out) {
  using T = ffi::NativeType<D>;
  auto xd = x.dimensions(), od = out->dimensions();
  const size_t rank = xd.size();
  if (rank < 2 || od.size() + 1 != rank || xd[rank - 1] != od[rank - 2])
    return ffi::Error::InvalidArgument("contract: extreme reduction shapes do not match");
  int64_t outer = 1;
  for (size_t d = 0; d + 2 < rank; ++d) {
    if (xd[d] != od[d])
      return ffi::Error::InvalidArgument("contract: extreme reduction dimensions differ");
    outer *= xd[d];
  }
  const int64_t r = xd[rank - 2], inner = xd[rank - 1], total = outer * r * inner;
  if (r == 0) return ffi::Error::InvalidArgument("contract: extreme reduction of size 0");
  if (total == 0) return ffi::Error::Success();
  const T* src = x.typed_data();
  T* dst = out->typed_data();
  const int64_t helpers = pool.num_threads() - 1;
  if (inner > 1) {
    const int64_t blocks = (inner + kBlock - 1) / kBlock;
    Parallel(pool, kParallelMin, outer * blocks, total, [&](int64_t item) {
      const int64_t o = item / blocks, j0 = item % blocks * kBlock;
      ColumnsAny<T, kMax>(src + o * r * inner + j0, r, inner, std::min(kBlock, inner - j0),
                          dst + o * inner + j0);
    }, helpers);
    return ffi::Error::Success();
  }
  // Rows (inner == 1): guided ranges of whole rows when there are many
  // (parallel.h), at least 16 rows (fewer where 16 rows exceed kItem
  // elements); otherwise each row is
  // cut into segments of kItem / 8 elements, shared the same way, reduced
  // apart, then folded.
  if (outer >= 4 * pool.num_threads() || r <= kItem) {
    if (total < kParallelMin) {
      for (int64_t o = 0; o < outer; ++o) dst[o] = RowAny<T, kMax>(src + o * r, r);
      return ffi::Error::Success();
    }
    const int64_t least = std::max<int64_t>(1, std::min<int64_t>(kItem / r, 16));
    contract::Guided(pool, outer, least, helpers, [src, dst, r](int64_t begin, int64_t end) {
      for (int64_t o = begin; o < end; ++o) dst[o] = RowAny<T, kMax>(src + o * r, r);
    });
    return ffi::Error::Success();
  }
  const int64_t length = kItem / 8, segments = (r + length - 1) / length;
  std::vector<T> part(outer * segments);
  T* parts = part.data();
  contract::Guided(pool, outer * segments, 1, helpers,
                   [src, parts, r, length, segments](int64_t begin, int64_t end) {
    for (int64_t item = begin; item < end; ++item) {
      const int64_t o = item / segments, s0 = item % segments * length;
      parts[item] = RowAny<T, kMax>(src + o * r + s0, std::min(length, r - s0));
    }
  });
  for (int64_t o = 0; o < outer; ++o) dst[o] = Scalar<T, kMax>(&part[o * segments], segments);
  return ffi::Error::Success();
}

}  // namespace

#define CONTRACT_EXTREME(name, D, kMax)                                      \
  XLA_FFI_DEFINE_HANDLER_SYMBOL(name, (ExtremeHandler<D, kMax>),             \
                                ffi::Ffi::Bind()                             \
                                    .Ctx<ffi::ThreadPool>()                  \
                                    .Arg<ffi::Buffer<D>>()                   \
                                    .Ret<ffi::Buffer<D>>());

CONTRACT_EXTREME(contract_max_f32, ffi::F32, true)
CONTRACT_EXTREME(contract_max_f64, ffi::F64, true)
CONTRACT_EXTREME(contract_max_s32, ffi::S32, true)
CONTRACT_EXTREME(contract_max_s64, ffi::S64, true)
CONTRACT_EXTREME(contract_min_f32, ffi::F32, false)
CONTRACT_EXTREME(contract_min_f64, ffi::F64, false)
CONTRACT_EXTREME(contract_min_s32, ffi::S32, false)
CONTRACT_EXTREME(contract_min_s64, ffi::S64, false)
