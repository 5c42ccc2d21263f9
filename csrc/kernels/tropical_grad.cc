// The gradient of a max-plus (min-plus) product, for XLA's CPU backend
// (contract/backend/semiring.py, _tropical_bwd).
//
// C[i, j] = max_k A[i, k] + B[k, j]; jnp.max's rule shares the cotangent
// G[i, j] evenly among the k where A[i, k] + B[k, j] == C[i, j]. Two passes,
// each over the i x k x n terms without storing them:
//
//   count  N[i, j]  = #{k : A[i, k] + B[k, j] == C[i, j]}
//   share  dA[i, k] = sum_j [A[i, k] + B[k, j] == C[i, j]] * S[i, j]
//
// with S = G / N from the caller; dB is the share pass on the transposed
// problem. The sums are the forward's own float additions, so equality is
// exact; max-plus and min-plus are the same here. XLA's form of these
// (reductions with a select over a broadcast) does not vectorize on CPU: a
// 1024³ gradient took 10.9 s there against 41 ms for the forward, measured.
//
// Rows of A are taken four at a time, so that each row of B is read once
// per four (B is what streams from cache). The loops are written with GCC
// vector extensions, AVX2 or baseline picked at run time.
#include <algorithm>
#include <cstdint>
#include <cstring>

#include "parallel.h"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

using contract::Parallel;

#define CONTRACT_INLINE inline __attribute__((always_inline))

constexpr int64_t kRows = 4;               // rows of A per pass over B
constexpr int64_t kParallelMin = 1 << 16;  // terms below which one thread does all

struct Problem {
  int64_t m, k, n;
};

// N[i0..i0+r, :] of one matrix of the batch.
template <typename T, int W>
CONTRACT_INLINE void Count(const T* a, const T* b, const T* c, T* cnt, Problem p, int64_t i0,
                           int64_t r) {
  typedef T V __attribute__((vector_size(W)));
  constexpr int L = W / sizeof(T);
  std::fill(cnt + i0 * p.n, cnt + (i0 + r) * p.n, T(0));
  for (int64_t q = 0; q < p.k; ++q) {
    const T* brow = b + q * p.n;
    for (int64_t t = 0; t < r; ++t) {
      const T s = a[(i0 + t) * p.k + q];
      const T* crow = c + (i0 + t) * p.n;
      T* nrow = cnt + (i0 + t) * p.n;
      int64_t j = 0;
      for (; j + L <= p.n; j += L) {
        V x, y, z;
        std::memcpy(&x, brow + j, W);
        std::memcpy(&y, crow + j, W);
        std::memcpy(&z, nrow + j, W);
        const V one = z + T(1);
        z = (x + s == y) ? one : z;
        std::memcpy(nrow + j, &z, W);
      }
      for (; j < p.n; ++j) nrow[j] += (brow[j] + s == crow[j]) ? T(1) : T(0);
    }
  }
}

// dA[i0..i0+r, :] of one matrix of the batch.
template <typename T, int W>
CONTRACT_INLINE void Share(const T* a, const T* b, const T* c, const T* share, T* da, Problem p,
                           int64_t i0, int64_t r) {
  typedef T V __attribute__((vector_size(W)));
  constexpr int L = W / sizeof(T);
  for (int64_t q = 0; q < p.k; ++q) {
    const T* brow = b + q * p.n;
    for (int64_t t = 0; t < r; ++t) {
      const T s = a[(i0 + t) * p.k + q];
      const T* crow = c + (i0 + t) * p.n;
      const T* hrow = share + (i0 + t) * p.n;
      V acc = {};
      int64_t j = 0;
      for (; j + L <= p.n; j += L) {
        V x, y, h;
        std::memcpy(&x, brow + j, W);
        std::memcpy(&y, crow + j, W);
        std::memcpy(&h, hrow + j, W);
        const V zero = {};
        acc += (x + s == y) ? h : zero;
      }
      T total = T(0);
      for (int l = 0; l < L; ++l) total += acc[l];
      for (; j < p.n; ++j) total += (brow[j] + s == crow[j]) ? hrow[j] : T(0);
      da[(i0 + t) * p.k + q] = total;
    }
  }
}

#if defined(__x86_64__)
template <typename T>
__attribute__((target("avx2"))) void CountAvx2(const T* a, const T* b, const T* c, T* n,
                                               Problem p, int64_t i0, int64_t r) {
  Count<T, 32>(a, b, c, n, p, i0, r);
}
template <typename T>
__attribute__((target("avx2"))) void ShareAvx2(const T* a, const T* b, const T* c, const T* s,
                                               T* da, Problem p, int64_t i0, int64_t r) {
  Share<T, 32>(a, b, c, s, da, p, i0, r);
}

bool HasAvx2() {
  static const bool avx2 = __builtin_cpu_supports("avx2");
  return avx2;
}
#endif

// The (batch, m, k, n) of (..., m, k), (..., k, n) and (..., m, n) buffers,
// or false when they do not fit together.
template <typename A, typename B, typename C>
bool Shape(const A& a, const B& b, const C& c, int64_t& batch, Problem& p) {
  auto ad = a.dimensions(), bd = b.dimensions(), cd = c.dimensions();
  const size_t rank = cd.size();
  if (rank < 2 || ad.size() != rank || bd.size() != rank) return false;
  batch = 1;
  for (size_t d = 0; d + 2 < rank; ++d) {
    if (ad[d] != cd[d] || bd[d] != cd[d]) return false;
    batch *= cd[d];
  }
  p = {cd[rank - 2], ad[rank - 1], cd[rank - 1]};
  return ad[rank - 2] == p.m && bd[rank - 2] == p.k && bd[rank - 1] == p.n;
}

// Runs body(matrix, first row, rows) over blocks of kRows rows of A.
template <typename Body>
void Blocks(ffi::ThreadPool& pool, int64_t batch, Problem p, Body body) {
  const int64_t blocks = (p.m + kRows - 1) / kRows;
  Parallel(pool, kParallelMin, batch * blocks, batch * p.m * p.k * p.n, [&](int64_t item) {
    const int64_t bi = item / blocks, i0 = item % blocks * kRows;
    body(bi, i0, std::min(kRows, p.m - i0));
  });
}

template <ffi::DataType D>
ffi::Error CountHandler(ffi::ThreadPool pool, ffi::Buffer<D> a, ffi::Buffer<D> b,
                        ffi::Buffer<D> c, ffi::ResultBuffer<D> out) {
  using T = ffi::NativeType<D>;
  int64_t batch;
  Problem p;
  if (!Shape(a, b, c, batch, p) || out->element_count() != c.element_count())
    return ffi::Error::InvalidArgument("contract: tropical count shapes do not match");
  const T *x = a.typed_data(), *y = b.typed_data(), *z = c.typed_data();
  T* n = out->typed_data();
  Blocks(pool, batch, p, [&](int64_t bi, int64_t i0, int64_t r) {
    const T* xa = x + bi * p.m * p.k;
    const T* yb = y + bi * p.k * p.n;
    const T* zc = z + bi * p.m * p.n;
    T* nn = n + bi * p.m * p.n;
#if defined(__x86_64__)
    if (HasAvx2()) return CountAvx2<T>(xa, yb, zc, nn, p, i0, r);
#endif
    Count<T, 16>(xa, yb, zc, nn, p, i0, r);
  });
  return ffi::Error::Success();
}

template <ffi::DataType D>
ffi::Error ShareHandler(ffi::ThreadPool pool, ffi::Buffer<D> a, ffi::Buffer<D> b,
                        ffi::Buffer<D> c, ffi::Buffer<D> share, ffi::ResultBuffer<D> out) {
  using T = ffi::NativeType<D>;
  int64_t batch;
  Problem p;
  if (!Shape(a, b, c, batch, p) || share.element_count() != c.element_count() ||
      out->element_count() != a.element_count())
    return ffi::Error::InvalidArgument("contract: tropical share shapes do not match");
  const T *x = a.typed_data(), *y = b.typed_data(), *z = c.typed_data(), *h = share.typed_data();
  T* da = out->typed_data();
  Blocks(pool, batch, p, [&](int64_t bi, int64_t i0, int64_t r) {
    const T* xa = x + bi * p.m * p.k;
    const T* yb = y + bi * p.k * p.n;
    const T* zc = z + bi * p.m * p.n;
    const T* hh = h + bi * p.m * p.n;
    T* dd = da + bi * p.m * p.k;
#if defined(__x86_64__)
    if (HasAvx2()) return ShareAvx2<T>(xa, yb, zc, hh, dd, p, i0, r);
#endif
    Share<T, 16>(xa, yb, zc, hh, dd, p, i0, r);
  });
  return ffi::Error::Success();
}

}  // namespace

#define CONTRACT_TROPICAL_COUNT(name, D)                               \
  XLA_FFI_DEFINE_HANDLER_SYMBOL(name, CountHandler<D>,                 \
                                ffi::Ffi::Bind()                       \
                                    .Ctx<ffi::ThreadPool>()            \
                                    .Arg<ffi::Buffer<D>>()             \
                                    .Arg<ffi::Buffer<D>>()             \
                                    .Arg<ffi::Buffer<D>>()             \
                                    .Ret<ffi::Buffer<D>>());
#define CONTRACT_TROPICAL_SHARE(name, D)                               \
  XLA_FFI_DEFINE_HANDLER_SYMBOL(name, ShareHandler<D>,                 \
                                ffi::Ffi::Bind()                       \
                                    .Ctx<ffi::ThreadPool>()            \
                                    .Arg<ffi::Buffer<D>>()             \
                                    .Arg<ffi::Buffer<D>>()             \
                                    .Arg<ffi::Buffer<D>>()             \
                                    .Arg<ffi::Buffer<D>>()             \
                                    .Ret<ffi::Buffer<D>>());

CONTRACT_TROPICAL_COUNT(contract_tropcount_f32, ffi::F32)
CONTRACT_TROPICAL_COUNT(contract_tropcount_f64, ffi::F64)
CONTRACT_TROPICAL_SHARE(contract_tropshare_f32, ffi::F32)
CONTRACT_TROPICAL_SHARE(contract_tropshare_f64, ffi::F64)
