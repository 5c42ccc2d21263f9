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
#include <vector>

#include "parallel.h"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

// The Fortran BLAS gemm signature (LP64: 32-bit integers), any element type.
using Gemm = void(const char*, const char*, const int*, const int*, const int*, const void*,
                  const void*, const int*, const void*, const int*, const void*, void*,
                  const int*);

// MKL's strided batch: the gemm arguments, a stride after each matrix, then
// the batch size. One call runs the whole batch (64x128^3 float32: 0.97 ms,
// against 1.6 ms for a loop of gemm calls); OpenBLAS has none, so its slots
// stay empty and the batch is a loop.
using BatchGemm = void(const char*, const char*, const int*, const int*, const int*,
                       const void*, const void*, const int*, const int*, const void*,
                       const int*, const int*, const void*, void*, const int*, const int*,
                       const int*);

// One slot per element type: float32, float64, complex64, complex128 (the
// order of ROUTINES in contract/native.py).
Gemm* gemm_fns[4] = {nullptr, nullptr, nullptr, nullptr};
BatchGemm* batch_fns[4] = {nullptr, nullptr, nullptr, nullptr};

template <ffi::DataType T>
constexpr int kSlot = T == ffi::F32 ? 0 : T == ffi::F64 ? 1 : T == ffi::C64 ? 2 : 3;

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

// MKL's mkl_set_num_threads_local (null with OpenBLAS, whose calls keep
// their own threads): 1 in a task makes that thread's MKL calls sequential.
using SetLocalThreads = int(int);
SetLocalThreads* set_local_threads = nullptr;

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

template <ffi::DataType T>
ffi::Error BatchedGemm(ffi::ThreadPool pool, ffi::Buffer<T> a, ffi::Buffer<T> b,
                       ffi::ResultBuffer<T> out, bool trans_a, bool trans_b) {
  Gemm* gemm = gemm_fns[kSlot<T>];
  if (gemm == nullptr) return ffi::Error::InvalidArgument("contract: BLAS gemm not loaded");
  Sizes z;
  if (auto e = ReadSizes(a, b, out, trans_a, trans_b, z); e.failure()) return e;
  const int64_t batch = z.batch, m = z.m, n = z.n, k = z.k;
  const int mi = z.mi, ni = z.ni, ki = z.ki;
  // The column-major views (see the file comment) have the same leading dimensions.
  const int ldb = z.ldb, lda = z.lda, ldc = ni;
  const char tb = trans_b ? 'T' : 'N', ta = trans_a ? 'T' : 'N';
  using E = ffi::NativeType<T>;
  const E one(1), zero(0);
  const E* ap = a.typed_data();
  const E* bp = b.typed_data();
  E* cp = out->typed_data();
  if (Empty(z, cp)) return ffi::Error::Success();
  if (Tasks(pool, z, [&](int64_t i, int64_t r0, int64_t rows) {
        const int ri = static_cast<int>(rows);
        gemm(&tb, &ta, &ni, &ri, &ki, &one, bp + i * k * n, &ldb, ap + RowsAt(z, trans_a, i, r0),
             &lda, &zero, cp + i * m * n + r0 * n, &ldc);
      }))
    return ffi::Error::Success();
  BatchGemm* batched = batch_fns[kSlot<T>];
  if (batched != nullptr && batch > 1 && batch <= INT32_MAX && m * k <= INT32_MAX &&
      k * n <= INT32_MAX && m * n <= INT32_MAX) {
    const int sa = static_cast<int>(m * k), sb = static_cast<int>(k * n);
    const int sc = static_cast<int>(m * n), count = static_cast<int>(batch);
    batched(&tb, &ta, &ni, &mi, &ki, &one, bp, &ldb, &sb, ap, &lda, &sa, &zero, cp, &ldc, &sc,
            &count);
    return ffi::Error::Success();
  }
  for (int64_t i = 0; i < batch; ++i) {
    gemm(&tb, &ta, &ni, &mi, &ki, &one, bp + i * k * n, &ldb, ap + i * m * k, &lda, &zero,
         cp + i * m * n, &ldc);
  }
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
    std::vector<uint8_t> shifted(static_cast<size_t>(rows * k));
    const uint8_t* src = ap + RowsAt(z, trans_a, i, r0);
    const int64_t lines = trans_a ? k : rows, width = trans_a ? rows : k;
    for (int64_t l = 0; l < lines; ++l)
      for (int64_t e = 0; e < width; ++e) shifted[l * width + e] = src[l * lda + e] ^ 0x80u;
    s8_fn(kRowMajor, trans_a ? kTrans : kNoTrans, trans_b ? kTrans : kNoTrans, kFixOffset,
          static_cast<int>(rows), ni, ki, 1.0f, shifted.data(), static_cast<int>(width),
          static_cast<int8_t>(-128), bp + i * k * n, ldb, 0, 0.0f, cp + i * m * n + r0 * n, ni,
          &no_offset);
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
  set_local_threads = reinterpret_cast<SetLocalThreads*>(fn);
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

// fn may be null: no batched routine, loop over gemm.
extern "C" int contract_set_gemm_batch(int slot, void* fn) {
  if (slot < 0 || slot > 3) return 1;
  batch_fns[slot] = reinterpret_cast<BatchGemm*>(fn);
  return 0;
}

#define CONTRACT_GEMM(name, T)                                                    \
  XLA_FFI_DEFINE_HANDLER_SYMBOL(name, BatchedGemm<T>,                             \
                                ffi::Ffi::Bind()                                  \
                                    .Ctx<ffi::ThreadPool>()                       \
                                    .Arg<ffi::Buffer<T>>()                        \
                                    .Arg<ffi::Buffer<T>>()                        \
                                    .Ret<ffi::Buffer<T>>()                        \
                                    .Attr<bool>("trans_a")                        \
                                    .Attr<bool>("trans_b"));

CONTRACT_GEMM(contract_gemm_f32, ffi::F32)
CONTRACT_GEMM(contract_gemm_f64, ffi::F64)
CONTRACT_GEMM(contract_gemm_c64, ffi::C64)
CONTRACT_GEMM(contract_gemm_c128, ffi::C128)

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
