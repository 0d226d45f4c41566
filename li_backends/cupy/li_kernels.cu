// Leaky-integrator kernels of the ``cupy`` backend (SPEC section 1).
//
// CuPy compiles this file with NVRTC (cupy.RawModule, one module per dtype);
// the tests also compile it with nvcc for several GPU architectures and, for
// the host, with g++ through tests/cuda_host/cuda_host.h.
//
// Kernels are templated on the storage type T: float, double, or __half,
// which is computed in float (Compute<T>::type). One thread per neuron, on a
// 1-d grid of ceil(N / blockDim.x) blocks; indices are 64-bit (a scan touches
// T*N elements, which may exceed 2^31).
//
// A parameter (tau_syn_inv, tau_mem_inv, v_leak) arrives as six arguments:
// a constant `scalar` when `values` is null, else a small contiguous array read
// through broadcasting: its non-broadcast axes form at most two runs of
// consecutive neuron axes, and run r, of `size_r` elements, advances every
// `inner_r` flat neuron indices, so that neuron n reads
// values[(n / inner0 % size0) * size1 + n / inner1 % size1].

#ifndef LI_CUDA_HOST
#include <cuda_fp16.h>
#endif

template <typename T> struct Compute { typedef T type; };
template <> struct Compute<__half> { typedef float type; };

template <typename T>
__device__ __forceinline__ T load(const T* p, long long k) { return p[k]; }
__device__ __forceinline__ float load(const __half* p, long long k) { return __half2float(p[k]); }

template <typename T>
__device__ __forceinline__ void store(T* p, long long k, T value) { p[k] = value; }
__device__ __forceinline__ void store(__half* p, long long k, float value) { p[k] = __float2half_rn(value); }

// A product rounded on its own: the compiler may not fuse it into an FMA, so
// b = 1 - dt*tau_syn_inv is exactly 0 when dt*tau_syn_inv rounds to 1 (SPEC
// section 4: with tau_inv = 1/dt the current stays exactly 0).
__device__ __forceinline__ float mul_rn(float x, float y) { return __fmul_rn(x, y); }
__device__ __forceinline__ double mul_rn(double x, double y) { return __dmul_rn(x, y); }

// (n / inner) % size, without the divisions that change nothing.
__device__ __forceinline__ long long run_index(long long n, long long inner, long long size) {
    if (size == 1) return 0;
    const long long q = inner == 1 ? n : n / inner;
    return q < size ? q : q % size;
}

// The value of a parameter at flat neuron index n (see the header).
template <typename T>
__device__ __forceinline__ typename Compute<T>::type parameter(
    const T* values, typename Compute<T>::type scalar,
    long long inner0, long long size0, long long inner1, long long size1, long long n) {
    if (values == nullptr) return scalar;
    return load(values, run_index(n, inner0, size0) * size1 + run_index(n, inner1, size1));
}

// One Euler step in the SPEC's order, for each of the n_neurons neurons:
//   j = i + x;  v' = v + dt*tau_mem_inv*((v_leak - v) + j);  i' = j + (-dt*tau_syn_inv)*j
// writes v' to v_new and to v_copy (two distinct outputs) and i' to i_new.
template <typename T>
__global__ void li_step(
    const T* __restrict__ x, const T* __restrict__ v, const T* __restrict__ i,
    const T* __restrict__ syn_values, typename Compute<T>::type syn_scalar,
    long long syn_inner0, long long syn_size0, long long syn_inner1, long long syn_size1,
    const T* __restrict__ mem_values, typename Compute<T>::type mem_scalar,
    long long mem_inner0, long long mem_size0, long long mem_inner1, long long mem_size1,
    const T* __restrict__ leak_values, typename Compute<T>::type leak_scalar,
    long long leak_inner0, long long leak_size0, long long leak_inner1, long long leak_size1,
    typename Compute<T>::type dt,
    T* __restrict__ v_new, T* __restrict__ v_copy, T* __restrict__ i_new,
    long long n_neurons) {
    typedef typename Compute<T>::type C;
    const long long n = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (n >= n_neurons) return;
    const C tau_syn_inv = parameter(syn_values, syn_scalar, syn_inner0, syn_size0, syn_inner1, syn_size1, n);
    const C tau_mem_inv = parameter(mem_values, mem_scalar, mem_inner0, mem_size0, mem_inner1, mem_size1, n);
    const C v_leak = parameter(leak_values, leak_scalar, leak_inner0, leak_size0, leak_inner1, leak_size1, n);
    const C v0 = load(v, n);
    const C j = load(i, n) + load(x, n);
    const C v1 = v0 + dt * tau_mem_inv * ((v_leak - v0) + j);
    const C i1 = j + (-dt * tau_syn_inv) * j;
    store(v_new, n, v1);
    store(v_copy, n, v1);
    store(i_new, n, i1);
}

// Inputs a scan thread loads ahead of the recurrence, so that it has that many
// reads in flight although each step depends on the previous one.
#define LI_SCAN_LOOKAHEAD 16

// The whole sequence in one launch: thread n keeps neuron n's state in
// registers and walks the time-major [steps, n_neurons] input, so a warp reads
// and writes consecutive addresses at every step. With a = dt*tau_mem_inv,
// b = 1 - dt*tau_syn_inv, c = 1 - a:
//   j_t = i_{t-1} + x_t;  v_t = c*v_{t-1} + a*(j_t + v_leak);  i_t = b*j_t
// Writes v_t to voltages[t] (and to voltages_copy[t]), i_t to currents[t], and
// the final state to v_last and i_last; a null output is not written.
template <typename T>
__global__ void li_scan(
    const T* __restrict__ xs, const T* __restrict__ v, const T* __restrict__ i,
    const T* __restrict__ syn_values, typename Compute<T>::type syn_scalar,
    long long syn_inner0, long long syn_size0, long long syn_inner1, long long syn_size1,
    const T* __restrict__ mem_values, typename Compute<T>::type mem_scalar,
    long long mem_inner0, long long mem_size0, long long mem_inner1, long long mem_size1,
    const T* __restrict__ leak_values, typename Compute<T>::type leak_scalar,
    long long leak_inner0, long long leak_size0, long long leak_inner1, long long leak_size1,
    typename Compute<T>::type dt,
    T* __restrict__ voltages, T* __restrict__ voltages_copy, T* __restrict__ currents,
    T* __restrict__ v_last, T* __restrict__ i_last,
    long long steps, long long n_neurons) {
    typedef typename Compute<T>::type C;
    const long long n = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (n >= n_neurons) return;
    const C a = mul_rn(dt, parameter(mem_values, mem_scalar, mem_inner0, mem_size0, mem_inner1, mem_size1, n));
    const C b = C(1) - mul_rn(dt, parameter(syn_values, syn_scalar, syn_inner0, syn_size0, syn_inner1, syn_size1, n));
    const C c = C(1) - a;
    const C v_leak = parameter(leak_values, leak_scalar, leak_inner0, leak_size0, leak_inner1, leak_size1, n);
    C voltage = load(v, n);
    C current = load(i, n);
    // One step with input x, writing at flat index k = t * n_neurons + n.
    auto advance = [&](C x, long long k) {
        const C j = current + x;
        voltage = c * voltage + a * (j + v_leak);
        current = b * j;
        store(voltages, k, voltage);
        if (voltages_copy != nullptr) store(voltages_copy, k, voltage);
        if (currents != nullptr) store(currents, k, current);
    };
    long long t = 0, k = n;
    for (; t + LI_SCAN_LOOKAHEAD <= steps; t += LI_SCAN_LOOKAHEAD) {
        C ahead[LI_SCAN_LOOKAHEAD];
#pragma unroll
        for (int u = 0; u < LI_SCAN_LOOKAHEAD; ++u) ahead[u] = load(xs, k + u * n_neurons);
#pragma unroll
        for (int u = 0; u < LI_SCAN_LOOKAHEAD; ++u, k += n_neurons) advance(ahead[u], k);
    }
    for (; t < steps; ++t, k += n_neurons) advance(load(xs, k), k);
    if (v_last != nullptr) store(v_last, n, voltage);
    if (i_last != nullptr) store(i_last, n, current);
}
