// contract._kernels: the XLA FFI handlers of gemm.cc, conv.cc, scan.cc,
// tropical.cc, tropical_grad.cc, extreme.cc and logrepair.cc as one Python
// extension module (nanobind), as JAX's examples/ffi ships them.
//
// Python reads `handlers()` (name -> PyCapsule, what jax.ffi.register_ffi_target
// takes), installs the BLAS routines by address with the set_* functions, and
// reads the build facts (FFI_API_VERSION, JAXLIB_VERSION, COMPILER) to decide
// whether the running XLA can call these handlers (contract/native.py).
#include <cstdint>

#include "blas.h"
#include "nanobind/nanobind.h"
#include "xla/ffi/api/c_api.h"
#include "xla/ffi/api/ffi.h"

namespace nb = nanobind;

#define CONTRACT_HANDLERS(X)                                                      \
  X(contract_gemm_f32) X(contract_gemm_f64) X(contract_gemm_c64)                  \
  X(contract_gemm_c128) X(contract_gemm_f32_bf16) X(contract_gemm_bf16w)          \
  X(contract_gemm_bf16w_bf16) X(contract_gemm_bf16) X(contract_gemm_s8)           \
  X(contract_conv_f32) X(contract_conv_f64) X(contract_cumsum_f32)                \
  X(contract_cumsum_f64) X(contract_cumsum_s32) X(contract_cumsum_s64)            \
  X(contract_cumsum_u32) X(contract_cumsum_u64) X(contract_maxplus_f32)           \
  X(contract_maxplus_f64) X(contract_maxplus_s32) X(contract_maxplus_s64)          \
  X(contract_minplus_f32) X(contract_minplus_f64) X(contract_minplus_s32)          \
  X(contract_minplus_s64) X(contract_max_f32) X(contract_max_f64) X(contract_max_s32)     \
  X(contract_max_s64) X(contract_min_f32) X(contract_min_f64) X(contract_min_s32)          \
  X(contract_min_s64) X(contract_logrepair_f32) X(contract_logrepair_f64)                  \
  X(contract_logrepairgrad_f32) X(contract_logrepairgrad_f64) X(contract_tropcount_f32)     \
  X(contract_tropcount_f64) X(contract_tropshare_f32) X(contract_tropshare_f64)

#define CONTRACT_DECLARE(name) XLA_FFI_DECLARE_HANDLER_SYMBOL(name);
CONTRACT_HANDLERS(CONTRACT_DECLARE)
#undef CONTRACT_DECLARE

namespace {

void* Address(std::uintptr_t address) { return reinterpret_cast<void*>(address); }

void Check(int status, const char* what) {
  if (status != 0) throw nb::value_error(what);
}

}  // namespace

NB_MODULE(_kernels, m) {
  m.doc() = "contract's XLA FFI kernels for the CPU (batched GEMM, conv, cumsum, max-plus, max/min, log repair).";
  m.def("handlers", []() {
    nb::dict out;
#define CONTRACT_CAPSULE(name) out[#name] = nb::capsule(reinterpret_cast<void*>(name));
    CONTRACT_HANDLERS(CONTRACT_CAPSULE)
#undef CONTRACT_CAPSULE
    return out;
  }, "Every FFI handler by name, as a PyCapsule for jax.ffi.register_ffi_target.");
  m.def("set_gemm", [](int slot, std::uintptr_t fn) {
    Check(contract_set_gemm(slot, Address(fn)), "gemm slot must be 0..3");
  }, nb::arg("slot"), nb::arg("address"),
        "Install the Fortran gemm for slot 0..3 (float32, float64, complex64, complex128).");
  m.def("set_gemm_bf16", [](std::uintptr_t fn) { contract_set_gemm_bf16(Address(fn)); },
        nb::arg("address"), "Install MKL's cblas_gemm_bf16bf16f32 (0: none).");
  m.def("set_gemm_s8", [](std::uintptr_t fn) { contract_set_gemm_s8(Address(fn)); },
        nb::arg("address"), "Install MKL's cblas_gemm_s8u8s32 (0: none).");
  m.def("set_local_threads", [](std::uintptr_t fn) { contract_set_local_threads(Address(fn)); },
        nb::arg("address"), "Install MKL_Set_Num_Threads_Local (0: none, as with OpenBLAS).");
  // The FFI API version of the headers these handlers were compiled with:
  // XLA calls a handler only while it supports that version.
  m.attr("FFI_API_VERSION") = nb::make_tuple(XLA_FFI_API_MAJOR, XLA_FFI_API_MINOR);
  m.attr("JAXLIB_VERSION") = CONTRACT_JAXLIB_VERSION;
  m.attr("COMPILER") = CONTRACT_COMPILER;
}
