// Batched GEMM for XLA's CPU backend, calling MKL or the OpenBLAS that SciPy ships.
//
// contract lowers a GEMM-shaped contraction step here when it measures faster
// than XLA's own CPU dot (see contract/backend/blas.py for the rule and the
// figures). The BLAS routines are not linked: Python hands over their
// addresses, read from SciPy's `scipy.linalg.cython_blas` capsules, once at
// load time, so this library depends on nothing but the XLA FFI headers.
//
// Arrays are row-major. A row-major C (m x n) is, read column-major, C^T, so
// C = op(A) op(B) is computed as the column-major C^T = op(B)^T op(A)^T: the
// operands swap places and no copy or transpose is ever made.
//
// With MKL, each call is cut into tasks (a matrix of the batch, or a block of
// its rows) run on XLA's intra-op thread pool, MKL sequential in each task.
// MKL's own threading would run on whichever OpenMP the process loaded
// first; under torch's GNU OpenMP its batched calls turned bimodal (int8
// 32x128^3: 0.48-1.99 ms over six runs, against 0.42-0.55 ms without torch).
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "blas.h"
#include "parallel.h"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace contract {
Gemm* gemm_fns[4] = {nullptr, nullptr, nullptr, nullptr};
SetLocalThreads* set_local_threads = nullptr;
}  // namespace contract

namespace {

using contract::Gemm;
using contract::gemm_fns;
using contract::kSlot;
using contract::set_local_threads;

// The sizes of one batched GEMM. a: (..., m, k), or (..., k, m) when
// trans_a; b: (..., k, n), or (..., n, k) when trans_b; out: (..., m, n), the
// leading dimensions the same batch in all three (checked in Python; vmap
// adds leading dimensions to all of them).
struct Sizes {
  int64_t batch = 1, m = 0, n = 0, k = 0;
  int mi = 0, ni = 0, ki = 0;
  int lda = 0, ldb = 0;  // of the row-major operands (transposed ones included)
};

template <typename A, typename B, typename O>
ffi::Error ReadSizes(const A& a, const B& b, O& out, bool trans_a, bool trans_b, Sizes& s) {
  auto ad = a.dimensions(), od = out->dimensions();
  const size_t r = od.size();
  if (r < 2 || ad.size() != r || b.dimensions().size() != r)
    return ffi::Error::InvalidArgument("contract: gemm operands must share a rank >= 2");
  for (size_t i = 0; i + 2 < r; ++i) s.batch *= od[i];
  s.m = od[r - 2];
  s.n = od[r - 1];
  s.k = trans_a ? ad[r - 2] : ad[r - 1];
  if (s.m > INT32_MAX || s.n > INT32_MAX || s.k > INT32_MAX)
    return ffi::Error::InvalidArgument("contract: gemm dimension over 2^31");
  s.mi = static_cast<int>(s.m);
  s.ni = static_cast<int>(s.n);
  s.ki = static_cast<int>(s.k);
  s.lda = trans_a ? s.mi : s.ki;
  s.ldb = trans_b ? s.ki : s.ni;
  return ffi::Error::Success();
}

constexpr int64_t kTaskMinRows = 32;       // rows below which a matrix is not cut
constexpr int64_t kParallelMinMacs = 1 << 18;  // m * n * k * batch below which one thread runs

// Runs gemm(i, r0, rows) over the batch's matrices i and blocks of their rows
// on the pool, MKL sequential in each task; true if it ran (MKL only).
template <typename Pool, typename Fn>
bool Tasks(Pool& pool, const Sizes& z, Fn&& gemm) {
  if (set_local_threads == nullptr) return false;
  const int64_t workers = std::max<int64_t>(1, pool.num_threads());
  // Blocks per matrix: enough tasks to keep every worker busy to the end.
  int64_t parts = 1;
  while (parts * 2 * kTaskMinRows <= z.m && z.batch * parts % workers != 0 &&
         z.batch * parts < 4 * workers)
    ++parts;
  const int64_t block = (z.m + parts - 1) / parts;
  parts = (z.m + block - 1) / block;
  contract::Parallel(
      pool, kParallelMinMacs, z.batch * parts, z.batch * z.m * z.n * z.k,
      [&](int64_t t) {
        const int previous = set_local_threads(1);
        const int64_t r0 = t % parts * block;
        gemm(t / parts, r0, std::min(block, z.m - r0));
        set_local_threads(previous);
      },
      workers - 1);  // the calling thread is the last worker
  return true;
}

// Handles the empty products: true when there is nothing to write (m or n
// is 0) or all of c is zero (k is 0, an empty sum; BLAS wants ld >= 1 there).
template <typename E>
bool Empty(const Sizes& s, E* c) {
  if (s.m != 0 && s.n != 0 && s.k != 0) return false;
  if (s.k == 0) std::fill(c, c + s.batch * s.m * s.n, E(0));
  return true;
}

// The first element of rows r0.. of op(A)'s matrix i: rows of a transposed
// operand are its columns.
inline int64_t RowsAt(const Sizes& z, bool trans_a, int64_t i, int64_t r0) {
  return i * z.m * z.k + (trans_a ? r0 : r0 * z.k);
}

// Rounds float32 to bfloat16, to nearest even, as XLA's convert does; a NaN
// stays a (quiet) NaN.
// Branch-free, so that GCC vectorizes the loops that call it.
inline uint16_t ToBf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  const uint32_t nan = (u >> 16) | 0x40u, rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
  return static_cast<uint16_t>((u & 0x7fffffffu) > 0x7f800000u ? nan : rounded);
}

// The loop over ToBf16, vectorized for the widest units this CPU has (the
// library is built for any x86-64, so without these clones it would use SSE2).
#if defined(__x86_64__)
__attribute__((target_clones("arch=skylake-avx512", "avx2", "default")))
#endif
void RoundToBf16(const float* from, uint16_t* to, int64_t count) {
  for (int64_t e = 0; e < count; ++e) to[e] = ToBf16(from[e]);
}


// bfloat16 to float32: the same bits in the upper half.
#if defined(__x86_64__)
__attribute__((target_clones("arch=skylake-avx512", "avx2", "default")))
#endif
void WidenBf16(const uint16_t* from, float* to, int64_t count) {
  for (int64_t e = 0; e < count; ++e) {
    const uint32_t u = static_cast<uint32_t>(from[e]) << 16;
    std::memcpy(to + e, &u, sizeof u);
  }
}

// T is the operands' type, R the result's. BLAS multiplies in T, or in
// float32 for bfloat16 operands (T == BF16: on CPUs without AMX, MKL's
// float32 GEMM beats its bfloat16 one, costs.py has the figures): each task
// widens its block of A and its matrix of B into buffers of its own. R is
// that type, or BF16 for a float32 product: each task's float32 block is
// then rounded to bfloat16 while it is in cache, instead of XLA converting
// the whole float32 result afterwards (64 attention heads of 256x64x256:
// the GEMM took 2.8 ms, the convert 1.0 ms more).
template <ffi::DataType T, ffi::DataType R>
ffi::Error BatchedGemm(ffi::ThreadPool pool, ffi::Buffer<T> a, ffi::Buffer<T> b,
                       ffi::ResultBuffer<R> out, bool trans_a, bool trans_b) {
  constexpr bool widen = T == ffi::BF16, round = R == ffi::BF16;
  constexpr ffi::DataType W = widen ? ffi::F32 : T;  // what BLAS multiplies
  static_assert(R == W || (W == ffi::F32 && round));
  Gemm* gemm = gemm_fns[kSlot<W>];
  if (gemm == nullptr) return ffi::Error::InvalidArgument("contract: BLAS gemm not loaded");
  Sizes z;
  if (auto e = ReadSizes(a, b, out, trans_a, trans_b, z); e.failure()) return e;
  const int64_t batch = z.batch, m = z.m, n = z.n, k = z.k;
  const int ni = z.ni, ki = z.ki, ldc = ni;
  const char tb = trans_b ? 'T' : 'N', ta = trans_a ? 'T' : 'N';
  using E = ffi::NativeType<W>;
  using In = std::conditional_t<widen, uint16_t, E>;
  using O = std::conditional_t<round, uint16_t, E>;
  const E one(1), zero(0);
  const auto* ap = static_cast<const In*>(a.untyped_data());
  const auto* bp = static_cast<const In*>(b.untyped_data());
  O* cp = static_cast<O*>(out->untyped_data());
  if (Empty(z, cp)) return ffi::Error::Success();
  auto task = [&](int64_t i, int64_t r0, int64_t rows) {
    const int ri = static_cast<int>(rows);
    // The column-major views (see the file comment) have the same leading
    // dimensions as the row-major operands, or as the widened blocks.
    const E* at;
    const E* bt;
    int lda = z.lda;
    const int ldb = z.ldb;
    thread_local std::vector<float> wa, wb, block;  // see contract::Trim
    if constexpr (widen) {
      const int64_t lines = trans_a ? k : rows, width = trans_a ? rows : k;
      wa.resize(static_cast<size_t>(lines * width));
      wb.resize(static_cast<size_t>(k * n));
      const uint16_t* src = ap + RowsAt(z, trans_a, i, r0);
      for (int64_t l = 0; l < lines; ++l) WidenBf16(src + l * z.lda, wa.data() + l * width, width);
      WidenBf16(bp + i * k * n, wb.data(), k * n);
      at = wa.data(), bt = wb.data(), lda = static_cast<int>(width);
    } else {
      at = ap + RowsAt(z, trans_a, i, r0), bt = bp + i * k * n;
    }
    O* c = cp + i * m * n + r0 * n;
    if constexpr (round) {
      block.resize(static_cast<size_t>(rows * n));
      gemm(&tb, &ta, &ni, &ri, &ki, &one, bt, &ldb, at, &lda, &zero, block.data(), &ldc);
      RoundToBf16(block.data(), c, rows * n);
      contract::Trim(block);
    } else {
      gemm(&tb, &ta, &ni, &ri, &ki, &one, bt, &ldb, at, &lda, &zero, c, &ldc);
    }
    if constexpr (widen) {
      contract::Trim(wa);
      contract::Trim(wb);
    }
  };
  if (!Tasks(pool, z, task))
    for (int64_t i = 0; i < batch; ++i) task(i, 0, m);
  return ffi::Error::Success();
}

// MKL's bfloat16 GEMM with float32 accumulation and result (CBLAS, row-major;
// MKL_INT is 32-bit in the LP64 interface libmkl_rt defaults to). XLA's CPU
// dot runs batched bfloat16 products on a slow path (64 attention heads of
// 256x64x256: 8.6 ms, against 5.7 ms here, docs/lowering.md); OpenBLAS
// through SciPy has no bfloat16 routine, so the slot stays empty there.
using GemmBf16 = void(int, int, int, int, int, int, float, const void*, int, const void*, int,
                      float, float*, int);
GemmBf16* bf16_fn = nullptr;
constexpr int kRowMajor = 101, kNoTrans = 111, kTrans = 112;

// Shapes as for ReadSizes; bfloat16 operands, a float32 result.
ffi::Error BatchedGemmBf16(ffi::ThreadPool pool, ffi::Buffer<ffi::BF16> a,
                           ffi::Buffer<ffi::BF16> b, ffi::ResultBuffer<ffi::F32> out,
                           bool trans_a, bool trans_b) {
  if (bf16_fn == nullptr) return ffi::Error::InvalidArgument("contract: bfloat16 gemm not loaded");
  Sizes z;
  if (auto e = ReadSizes(a, b, out, trans_a, trans_b, z); e.failure()) return e;
  const int64_t batch = z.batch, m = z.m, n = z.n, k = z.k;
  const int mi = z.mi, ni = z.ni, ki = z.ki, lda = z.lda, ldb = z.ldb;
  const auto* ap = static_cast<const uint16_t*>(a.untyped_data());
  const auto* bp = static_cast<const uint16_t*>(b.untyped_data());
  float* cp = out->typed_data();
  if (Empty(z, cp)) return ffi::Error::Success();
  auto gemm = [&](int64_t i, int64_t r0, int64_t rows) {
    bf16_fn(kRowMajor, trans_a ? kTrans : kNoTrans, trans_b ? kTrans : kNoTrans,
            static_cast<int>(rows), ni, ki, 1.0f, ap + RowsAt(z, trans_a, i, r0), lda,
            bp + i * k * n, ldb, 0.0f, cp + i * m * n + r0 * n, ni);
  };
  if (!Tasks(pool, z, gemm))
    for (int64_t i = 0; i < batch; ++i) gemm(i, 0, m);
  return ffi::Error::Success();
}


// MKL's int8 GEMM with int32 accumulation (cblas_gemm_s8u8s32, row-major).
// In row-major MKL reads A as unsigned and B as signed bytes, with an offset
// added to each; a signed A is passed as A + 128 (its sign bit flipped) with
// the offset -128, so MKL computes (A + 128 - 128) B exactly. XLA's CPU dot
// has an int8 kernel of its own that runs 512^3 in 1.36 ms on a CPU without
// AMX, where MKL takes 0.33 ms (docs/lowering.md).
using GemmS8 = void(int, int, int, int, int, int, int, float, const void*, int, int8_t,
                    const void*, int, int8_t, float, int32_t*, int, const int32_t*);
GemmS8* s8_fn = nullptr;
constexpr int kFixOffset = 173;  // CblasFixOffset: one offset for all of C

ffi::Error BatchedGemmS8(ffi::ThreadPool pool, ffi::Buffer<ffi::S8> a, ffi::Buffer<ffi::S8> b,
                         ffi::ResultBuffer<ffi::S32> out, bool trans_a, bool trans_b) {
  if (s8_fn == nullptr) return ffi::Error::InvalidArgument("contract: int8 gemm not loaded");
  Sizes z;
  if (auto e = ReadSizes(a, b, out, trans_a, trans_b, z); e.failure()) return e;
  const int64_t batch = z.batch, m = z.m, n = z.n, k = z.k;
  const int mi = z.mi, ni = z.ni, ki = z.ki, lda = z.lda, ldb = z.ldb;
  const auto* ap = static_cast<const uint8_t*>(a.untyped_data());
  const auto* bp = static_cast<const int8_t*>(b.untyped_data());
  int32_t* cp = out->typed_data();
  if (Empty(z, cp)) return ffi::Error::Success();
  const int32_t no_offset = 0;
  // Each task shifts its block of A into a buffer of its own, stored as A is:
  // rows x k, or k x rows when transposed.
  auto gemm = [&](int64_t i, int64_t r0, int64_t rows) {
    thread_local std::vector<uint8_t> shifted;  // see contract::Trim
    shifted.resize(static_cast<size_t>(rows * k));
    const uint8_t* src = ap + RowsAt(z, trans_a, i, r0);
    const int64_t lines = trans_a ? k : rows, width = trans_a ? rows : k;
    for (int64_t l = 0; l < lines; ++l)
      for (int64_t e = 0; e < width; ++e) shifted[l * width + e] = src[l * lda + e] ^ 0x80u;
    s8_fn(kRowMajor, trans_a ? kTrans : kNoTrans, trans_b ? kTrans : kNoTrans, kFixOffset,
          static_cast<int>(rows), ni, ki, 1.0f, shifted.data(), static_cast<int>(width),
          static_cast<int8_t>(-128), bp + i * k * n, ldb, 0, 0.0f, cp + i * m * n + r0 * n, ni,
          &no_offset);
    contract::Trim(shifted);
  };
  if (!Tasks(pool, z, gemm))
    for (int64_t i = 0; i < batch; ++i) gemm(i, 0, m);
  return ffi::Error::Success();
}

}  // namespace

extern "C" int contract_set_gemm_bf16(void* fn) {
  bf16_fn = reinterpret_cast<GemmBf16*>(fn);
  return 0;
}

extern "C" int contract_set_local_threads(void* fn) {
  set_local_threads = reinterpret_cast<contract::SetLocalThreads*>(fn);
  return 0;
}

extern "C" int contract_set_gemm_s8(void* fn) {
  s8_fn = reinterpret_cast<GemmS8*>(fn);
  return 0;
}

extern "C" int contract_set_gemm(int slot, void* fn) {
  if (slot < 0 || slot > 3) return 1;
  gemm_fns[slot] = reinterpret_cast<Gemm*>(fn);
  return 0;
}

#define CONTRACT_GEMM(name, T, R)                                                 \
  XLA_FFI_DEFINE_HANDLER_SYMBOL(name, (BatchedGemm<T, R>),                        \
                                ffi::Ffi::Bind()                                  \
                                    .Ctx<ffi::ThreadPool>()                       \
                                    .Arg<ffi::Buffer<T>>()                        \
                                    .Arg<ffi::Buffer<T>>()                        \
                                    .Ret<ffi::Buffer<R>>()                        \
                                    .Attr<bool>("trans_a")                        \
                                    .Attr<bool>("trans_b"));

CONTRACT_GEMM(contract_gemm_f32, ffi::F32, ffi::F32)
CONTRACT_GEMM(contract_gemm_f64, ffi::F64, ffi::F64)
CONTRACT_GEMM(contract_gemm_c64, ffi::C64, ffi::C64)
CONTRACT_GEMM(contract_gemm_c128, ffi::C128, ffi::C128)
CONTRACT_GEMM(contract_gemm_f32_bf16, ffi::F32, ffi::BF16)
CONTRACT_GEMM(contract_gemm_bf16w, ffi::BF16, ffi::F32)
CONTRACT_GEMM(contract_gemm_bf16w_bf16, ffi::BF16, ffi::BF16)

XLA_FFI_DEFINE_HANDLER_SYMBOL(contract_gemm_bf16, BatchedGemmBf16,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::BF16>>()
                                  .Arg<ffi::Buffer<ffi::BF16>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Attr<bool>("trans_a")
                                  .Attr<bool>("trans_b"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(contract_gemm_s8, BatchedGemmS8,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::S8>>()
                                  .Arg<ffi::Buffer<ffi::S8>>()
                                  .Ret<ffi::Buffer<ffi::S32>>()
                                  .Attr<bool>("trans_a")
                                  .Attr<bool>("trans_b"));
