// The BLAS routines the FFI handlers call (gemm.cc, conv.cc): installed by
// address from Python at load time (contract/native.py, through the setters
// below that module.cc exposes), never linked.
#pragma once

#include "xla/ffi/api/ffi.h"

namespace contract {

// The Fortran BLAS gemm signature (LP64: 32-bit integers), any element type.
using Gemm = void(const char*, const char*, const int*, const int*, const int*, const void*,
                  const void*, const int*, const void*, const int*, const void*, void*,
                  const int*);

// One slot per element type: float32, float64, complex64, complex128 (the
// order of ROUTINES in contract/native.py); defined in gemm.cc.
extern Gemm* gemm_fns[4];

template <xla::ffi::DataType T>
constexpr int kSlot = T == xla::ffi::F32 ? 0 : T == xla::ffi::F64 ? 1 : T == xla::ffi::C64 ? 2 : 3;

// MKL's mkl_set_num_threads_local (null with OpenBLAS, whose calls keep
// their own threads): 1 in a task makes that thread's MKL calls sequential.
using SetLocalThreads = int(int);
extern SetLocalThreads* set_local_threads;

}  // namespace contract

// The setters, defined in gemm.cc: each returns 0, or 1 for a bad slot.
extern "C" int contract_set_gemm(int slot, void* fn);
extern "C" int contract_set_gemm_bf16(void* fn);
extern "C" int contract_set_gemm_s8(void* fn);
extern "C" int contract_set_local_threads(void* fn);
