// The exact repair of a log-semiring step's flagged entries, for XLA's CPU
// backend (contract/backend/semiring.py, _log_forward and _log_gemm_bwd).
//
// A log step is one GEMM on rescaled exponentials; an entry whose terms all
// underflowed there (or that is NaN or infinite) is flagged and recomputed
// as a max-shifted log-sum-exp of its own k terms. The portable form of that
// repair is a lax.cond around a loop of gathers and scatters, and XLA takes
// about 100 ms to compile each one (a 64-step HMM as one einsum: 8 s of its
// 11 s forward-and-gradient compile went to them, measured). Here each is
// one call that walks the flags.
//
// Forward:  out[b,i,j] = m + log sum_k exp(a[b,i,k] + c[b,k,j] - m), m the
//           largest term, where flag[b,i,j]; -inf where every term is; NaN
//           where a term is. Sums in double.
// Gradient: ga[b,i,k] += w, gc[b,k,j] += w, w = g[b,i,j] * exp(a + c - out)
//           (0 where out is -inf), for the flagged entries.
#include <cmath>
#include <cstdint>
#include <limits>

#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

struct Shape {
  int64_t batch, m, k, n;
};

// The shape of (..., m, k) x (..., k, n) -> (..., m, n) buffers, or false.
template <typename A, typename B, typename O>
bool Read(const A& a, const B& c, const O& out, Shape& s) {
  auto ad = a.dimensions(), cd = c.dimensions(), od = out.dimensions();
  const size_t rank = od.size();
  if (rank < 2 || ad.size() != rank || cd.size() != rank) return false;
  s.batch = 1;
  for (size_t d = 0; d + 2 < rank; ++d) {
    if (ad[d] != od[d] || cd[d] != od[d]) return false;
    s.batch *= od[d];
  }
  s.m = od[rank - 2], s.n = od[rank - 1], s.k = ad[rank - 1];
  return ad[rank - 2] == s.m && cd[rank - 2] == s.k && cd[rank - 1] == s.n;
}

template <typename T>
T LogSumExp(const T* a, const T* c, int64_t k, int64_t stride) {
  T top = -std::numeric_limits<T>::infinity();
  for (int64_t q = 0; q < k; ++q) {
    const T t = a[q] + c[q * stride];
    if (std::isnan(t)) return t;
    top = t > top ? t : top;
  }
  if (!std::isfinite(top)) return top;  // -inf: every term is; +inf: one is
  double total = 0;
  for (int64_t q = 0; q < k; ++q) total += std::exp(double(a[q] + c[q * stride] - top));
  return static_cast<T>(double(top) + std::log(total));
}

template <ffi::DataType D>
ffi::Error Repair(ffi::Buffer<D> a, ffi::Buffer<D> c, ffi::Buffer<D> out,
                  ffi::Buffer<ffi::PRED> flag, ffi::ResultBuffer<D> result) {
  using T = ffi::NativeType<D>;
  Shape s;
  if (!Read(a, c, out, s) || flag.element_count() != out.element_count())
    return ffi::Error::InvalidArgument("contract: log repair shapes do not match");
  const T* x = a.typed_data();
  const T* y = c.typed_data();
  const bool* f = flag.typed_data();
  T* r = result->typed_data();  // aliases out: only flagged entries change
  for (int64_t b = 0; b < s.batch; ++b)
    for (int64_t i = 0; i < s.m; ++i)
      for (int64_t j = 0; j < s.n; ++j) {
        const int64_t e = (b * s.m + i) * s.n + j;
        if (f[e]) r[e] = LogSumExp(x + (b * s.m + i) * s.k, y + b * s.k * s.n + j, s.k, s.n);
      }
  return ffi::Error::Success();
}

template <ffi::DataType D>
ffi::Error RepairGrad(ffi::Buffer<D> a, ffi::Buffer<D> c, ffi::Buffer<D> out, ffi::Buffer<D> g,
                      ffi::Buffer<ffi::PRED> flag, ffi::Buffer<D> ga, ffi::Buffer<D> gc,
                      ffi::ResultBuffer<D> ga_out, ffi::ResultBuffer<D> gc_out) {
  using T = ffi::NativeType<D>;
  Shape s;
  if (!Read(a, c, out, s) || flag.element_count() != out.element_count() ||
      g.element_count() != out.element_count() || ga.element_count() != a.element_count() ||
      gc.element_count() != c.element_count())
    return ffi::Error::InvalidArgument("contract: log repair gradient shapes do not match");
  const T* x = a.typed_data();
  const T* y = c.typed_data();
  const T* o = out.typed_data();
  const T* h = g.typed_data();
  const bool* f = flag.typed_data();
  T* dx = ga_out->typed_data();  // alias ga and gc: the flagged terms are added
  T* dy = gc_out->typed_data();
  for (int64_t b = 0; b < s.batch; ++b)
    for (int64_t i = 0; i < s.m; ++i)
      for (int64_t j = 0; j < s.n; ++j) {
        const int64_t e = (b * s.m + i) * s.n + j;
        if (!f[e] || o[e] == -std::numeric_limits<T>::infinity()) continue;
        const T* row = x + (b * s.m + i) * s.k;
        const T* col = y + b * s.k * s.n + j;
        T* drow = dx + (b * s.m + i) * s.k;
        T* dcol = dy + b * s.k * s.n + j;
        for (int64_t q = 0; q < s.k; ++q) {
          const T w = h[e] * std::exp(row[q] + col[q * s.n] - o[e]);
          drow[q] += w;
          dcol[q * s.n] += w;
        }
      }
  return ffi::Error::Success();
}

}  // namespace

#define CONTRACT_LOG_REPAIR(name, D)                                   \
  XLA_FFI_DEFINE_HANDLER_SYMBOL(name, Repair<D>,                       \
                                ffi::Ffi::Bind()                       \
                                    .Arg<ffi::Buffer<D>>()             \
                                    .Arg<ffi::Buffer<D>>()             \
                                    .Arg<ffi::Buffer<D>>()             \
                                    .Arg<ffi::Buffer<ffi::PRED>>()     \
                                    .Ret<ffi::Buffer<D>>());
#define CONTRACT_LOG_REPAIR_GRAD(name, D)                              \
  XLA_FFI_DEFINE_HANDLER_SYMBOL(name, RepairGrad<D>,                   \
                                ffi::Ffi::Bind()                       \
                                    .Arg<ffi::Buffer<D>>()             \
                                    .Arg<ffi::Buffer<D>>()             \
                                    .Arg<ffi::Buffer<D>>()             \
                                    .Arg<ffi::Buffer<D>>()             \
                                    .Arg<ffi::Buffer<ffi::PRED>>()     \
                                    .Arg<ffi::Buffer<D>>()             \
                                    .Arg<ffi::Buffer<D>>()             \
                                    .Ret<ffi::Buffer<D>>()             \
                                    .Ret<ffi::Buffer<D>>());

CONTRACT_LOG_REPAIR(contract_logrepair_f32, ffi::F32)
CONTRACT_LOG_REPAIR(contract_logrepair_f64, ffi::F64)
CONTRACT_LOG_REPAIR_GRAD(contract_logrepairgrad_f32, ffi::F32)
CONTRACT_LOG_REPAIR_GRAD(contract_logrepairgrad_f64, ffi::F64)
