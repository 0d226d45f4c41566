// Just enough CUDA for g++ to compile li_backends/cupy/li_kernels.cu for the
// host, so that the tests run the real kernel code without a GPU.
//
// __global__/__device__ functions become plain functions, __half is the
// compiler's IEEE binary16 _Float16 (same bits as numpy.float16), and
// launch() runs a kernel the way cuLaunchKernel would on a 1-d grid: every
// thread of every block, one after the other, with blockIdx, threadIdx,
// blockDim and gridDim set, its arguments given as an array of pointers to
// each argument's value (cuLaunchKernel's kernelParams; a struct argument's
// bytes are copied as the driver copies them). The kernels use no shared
// memory and no barriers, so running threads one by one is faithful.
#pragma once

#include <cstddef>
#include <cstring>
#include <tuple>
#include <type_traits>
#include <utility>

#define LI_CUDA_HOST 1
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)

typedef _Float16 __half;
inline float __half2float(__half h) { return static_cast<float>(h); }
inline __half __float2half_rn(float f) { return static_cast<__half>(f); }  // round to nearest even

// Round-to-nearest products (on the GPU: never contracted into an FMA).
inline float __fmul_rn(float x, float y) { return x * y; }
inline double __dmul_rn(double x, double y) { return x * y; }

struct dim3 {
    unsigned x = 1, y = 1, z = 1;
};
inline dim3 threadIdx, blockIdx, blockDim, gridDim;

// The value of a kernel parameter of type P from the bytes at `arg`, copied
// as cuLaunchKernel copies them (the bytes need not be aligned for P).
template <typename P>
P argument(const void* arg) {
    P value;
    std::memcpy(static_cast<void*>(&value), arg, sizeof(P));
    return value;
}

template <typename... P, std::size_t... I>
void launch_threads(void (*kernel)(P...), unsigned grid, unsigned block, void** args, std::index_sequence<I...>) {
    const std::tuple<std::remove_cv_t<P>...> values{argument<std::remove_cv_t<P>>(args[I])...};
    gridDim = dim3{grid, 1, 1};
    blockDim = dim3{block, 1, 1};
    for (unsigned b = 0; b < grid; ++b) {
        for (unsigned t = 0; t < block; ++t) {
            blockIdx = dim3{b, 0, 0};
            threadIdx = dim3{t, 0, 0};
            kernel(std::get<I>(values)...);
        }
    }
}

// Runs kernel<<<grid, block>>>(*args[0], *args[1], ...).
template <typename... P>
void launch(void (*kernel)(P...), unsigned grid, unsigned block, void** args) {
    launch_threads(kernel, grid, block, args, std::index_sequence_for<P...>{});
}
