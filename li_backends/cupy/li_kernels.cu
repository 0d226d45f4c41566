// Leaky-integrator kernels, shared by the ``cupy`` backend and by torch on
// CUDA (the contract (docs/contract.md), section 1).
//
// CuPy compiles this file with NVRTC (cupy.RawModule, one module per dtype);
// the tests also compile it with nvcc for several GPU architectures and, for
// the host, with g++ through tests/cuda_host/cuda_host.h. The Python side of a
// launch (pointers, parameter structs, grid) is li_backends/cupy/kernels.py.
//
// Kernels are templated on the storage type T: float, double, or __half,
// which is computed in float (Compute<T>::type). One thread per neuron, on a
// 1-d grid of ceil(N / blockDim.x) blocks; indices are 64-bit (a scan touches
// T*N elements, which may exceed 2^31). No kernel divides by a rate.
//
// The recurrences run in increment form, with the per-step decay fractions
// a = dt*tau_mem_inv and d = dt*tau_syn_inv used as they are: the decays
// 1 - a and 1 - d are never formed, since in float32 they are rounded near 1
// and would put a systematic error of up to eps/a into every step.
//
// double runs the recurrences plain. float (and __half, computed in float)
// runs them compensated, the arithmetic of li_backends/compiled/kernels.py
// operation for operation: each state is a float-float pair, a high part
// and the rounding error it carries (v, ev; i, ei; lam, el; mu, em), the low
// parts starting at 0 in each launch and never written. Every state update
// is the error-free sum two_sum, so a slow neuron's change, smaller than half
// a unit in the last place of its state, is carried instead of rounded away.
// Every product in it is rounded on its own (mul_rn: no FMA contraction,
// which would change the low parts), and nothing is reassociated.

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

// A product rounded on its own, never contracted into an FMA with what
// follows: a rate dt*tau_inv that rounds to 1 is exactly 1, so that with
// tau_syn_inv = 1/dt the current i = j - d*j stays exactly 0 (the contract,
// section 4).
__device__ __forceinline__ float mul_rn(float x, float y) { return __fmul_rn(x, y); }
__device__ __forceinline__ double mul_rn(double x, double y) { return __dmul_rn(x, y); }

// Whether a compute type carries the rounding error of its state updates.
template <typename C> struct Carries { static constexpr bool value = false; };
template <> struct Carries<float> { static constexpr bool value = true; };

// s = p + q rounded and e its rounding error, exactly: s + e == p + q
// (Knuth's TwoSum: branch-free, whichever of p and q is larger; p and q are
// taken by value, so s or e may be one of them).
template <typename C>
__device__ __forceinline__ void two_sum(C p, C q, C& s, C& e) {
    const C sum = p + q;
    const C z = sum - p;
    e = (p - (sum - z)) + (q - z);
    s = sum;
}

// A parameter broadcast to the neurons, passed to a kernel by value.
//
// With `values` null every neuron reads `scalar`. Otherwise `values` is a
// small contiguous array whose non-broadcast axes form at most two runs of
// consecutive neuron axes; run r, of `size_r` elements, advances every
// `inner_r` flat neuron indices, so that neuron n reads
//   scale * values[(n / inner0 % size0) * size1 + n / inner1 % size1]
// (the product rounded on its own; scale is dt for an inverse time constant
// and 1 otherwise).
template <typename T>
struct Parameter {
    const T* values;
    typename Compute<T>::type scalar;
    typename Compute<T>::type scale;
    long long inner0, size0, inner1, size1;
};

// (n / inner) % size, without the divisions that change nothing.
__device__ __forceinline__ long long run_index(long long n, long long inner, long long size) {
    if (size == 1) return 0;
    const long long q = inner == 1 ? n : n / inner;
    return q < size ? q : q % size;
}

// The value of parameter p at flat neuron index n.
template <typename T>
__device__ __forceinline__ typename Compute<T>::type value_at(const Parameter<T>& p, long long n) {
    if (p.values == nullptr) return p.scalar;
    return mul_rn(p.scale, load(p.values, run_index(n, p.inner0, p.size0) * p.size1 + run_index(n, p.inner1, p.size1)));
}

// One neuron's rates and state in registers, advanced one Euler step at a time
// in the contract's order:
//   j = i + x;   v = v + a*((v_leak - v) + j);   i = j - d*j
template <typename C, bool = Carries<C>::value>
struct Neuron {
    C a, d, v_leak, v, i;

    __device__ __forceinline__ C advance(C x) {
        const C j = i + x;
        v = v + a * ((v_leak - v) + j);
        i = j - d * j;
        return j;
    }
};

// The same step with float-float states (v, ev) and (i, ei), in this order:
//   j, ej = two_sum(i, x);   ej = ej + ei
//   s     = ((v_leak - v) + j) + (ej - ev)
//   v, ev = two_sum(v, s*a + ev)
//   i, ei = two_sum(j, ej - j*d)
template <typename C>
struct Neuron<C, true> {
    C a, d, v_leak, v, i;
    C ev = C(0), ei = C(0);

    __device__ __forceinline__ C advance(C x) {
        C j, ej;
        two_sum(i, x, j, ej);
        ej = ej + ei;
        const C s = ((v_leak - v) + j) + (ej - ev);
        two_sum(v, mul_rn(s, a) + ev, v, ev);
        two_sum(j, ej - mul_rn(j, d), i, ei);
        return j;
    }
};

// One Euler step for each of the n_neurons neurons: writes v' to v_new and to
// v_copy (two distinct outputs) and i' to i_new.
template <typename T>
__global__ void li_step(
    const T* __restrict__ x, const T* __restrict__ v, const T* __restrict__ i,
    Parameter<T> a, Parameter<T> d, Parameter<T> v_leak,
    T* __restrict__ v_new, T* __restrict__ v_copy, T* __restrict__ i_new, long long n_neurons) {
    typedef typename Compute<T>::type C;
    const long long n = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (n >= n_neurons) return;
    Neuron<C> neuron = {value_at(a, n), value_at(d, n), value_at(v_leak, n), load(v, n), load(i, n)};
    neuron.advance(load(x, n));
    store(v_new, n, neuron.v);
    store(v_copy, n, neuron.v);
    store(i_new, n, neuron.i);
}

// Speed. A scan is bound by memory bandwidth once enough bytes are in flight;
// with one thread per neuron the only parallelism is the neurons (32k
// threads at batch 32 x 1024), so each thread loads its inputs for a group of
// steps ahead, and the next group while it computes the current one: two
// groups of reads in flight although each step depends on the previous one.
// With few neurons a thread waits about one memory latency per group, so the
// scan takes (steps / group) latencies: 16-step groups made T=1000 over 32k
// neurons take 1.5x a copy on an H200, whatever the block size, hence 32-step
// groups for float and __half (16 for double: the same bytes). Splitting time
// into chunks instead would read the input twice (a pass for the chunks' end
// states, one to rescan them), 1.5x a copy's traffic, more than it can gain.
// The launch bounds cap the registers (128 for the forward scan, 64 for the
// float and __half adjoint, 128 for the double one, by ptxas -v on
// sm_75..sm_90, without spills but for 8 bytes of the compensated __half
// adjoint on sm_90 (nvcc 13.0)) so that 512 threads (1024 for the float
// adjoint) stay resident per multiprocessor, each with a group of loads in
// flight, and blocks are small (kernels.py) so that few neurons still spread
// over every multiprocessor. Blocks never exceed LI_MAX_BLOCK threads.
#define LI_MAX_BLOCK 256

template <typename T>
struct Tuning {
    static constexpr int scan_group = sizeof(T) == 8 ? 16 : 32;   // steps per load group, forward
    static constexpr int scan_min_blocks = 2;                     // of LI_MAX_BLOCK threads, resident
    static constexpr int backward_group = 4;                      // ... adjoint (up to 4 loads a step)
    static constexpr int backward_min_blocks = sizeof(T) == 8 ? 2 : 4;
};
#define LI_SCAN_GROUP (Tuning<T>::scan_group)
#define LI_SCAN_BOUNDS __launch_bounds__(LI_MAX_BLOCK, Tuning<T>::scan_min_blocks)
#define LI_BACKWARD_BOUNDS __launch_bounds__(LI_MAX_BLOCK, Tuning<T>::backward_min_blocks)

// The whole sequence in one launch: thread n keeps neuron n's state in
// registers and walks the time-major [steps, n_neurons] input, so a warp reads
// and writes consecutive addresses at every step. Writes v_t to voltages[t]
// (and to voltages_copy[t]), i_t to currents[t], j_t = i_{t-1} + x_t to js[t],
// and the final state to v_last and i_last; a null output is not written.
template <typename T>
__global__ void LI_SCAN_BOUNDS li_scan(
    const T* __restrict__ xs, const T* __restrict__ v0, const T* __restrict__ i0,
    Parameter<T> a, Parameter<T> d, Parameter<T> v_leak,
    T* __restrict__ voltages, T* __restrict__ voltages_copy, T* __restrict__ currents, T* __restrict__ js,
    T* __restrict__ v_last, T* __restrict__ i_last, long long steps, long long n_neurons) {
    typedef typename Compute<T>::type C;
    const long long n = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (n >= n_neurons) return;
    Neuron<C> neuron = {value_at(a, n), value_at(d, n), value_at(v_leak, n), load(v0, n), load(i0, n)};
    // One step with input x, writing at flat index k = t * n_neurons + n.
    auto advance = [&](C x, long long k) {
        const C j = neuron.advance(x);
        store(voltages, k, neuron.v);
        if (voltages_copy != nullptr) store(voltages_copy, k, neuron.v);
        if (currents != nullptr) store(currents, k, neuron.i);
        if (js != nullptr) store(js, k, j);
    };
    const long long groups = steps / LI_SCAN_GROUP, stride = n_neurons;
    long long k = n;
    C group[LI_SCAN_GROUP];
    if (groups > 0) {
#pragma unroll
        for (int u = 0; u < LI_SCAN_GROUP; ++u) group[u] = load(xs, k + u * stride);
    }
    for (long long g = 0; g < groups; ++g) {
        const bool more = g + 1 < groups;
        C next[LI_SCAN_GROUP];
        if (more) {
#pragma unroll
            for (int u = 0; u < LI_SCAN_GROUP; ++u) next[u] = load(xs, k + (LI_SCAN_GROUP + u) * stride);
        }
#pragma unroll
        for (int u = 0; u < LI_SCAN_GROUP; ++u, k += stride) advance(group[u], k);
        if (more) {
#pragma unroll
            for (int u = 0; u < LI_SCAN_GROUP; ++u) group[u] = next[u];
        }
    }
    for (long long t = groups * LI_SCAN_GROUP; t < steps; ++t, k += stride) advance(load(xs, k), k);
    if (v_last != nullptr) store(v_last, n, neuron.v);
    if (i_last != nullptr) store(i_last, n, neuron.i);
}

#define LI_BACKWARD_GROUP (Tuning<T>::backward_group)

// What the adjoint reads at one step t: the gradients of v_t and of i_t, and
// for the parameter gradients j_t and v_{t-1}.
template <typename C>
struct AdjointInput {
    C gv, gi, j, v_prev;
};

// The adjoint of li_scan, in reverse time. With lam, kap, mu the gradients of
// the loss with respect to v_t, i_t and j_t (all zero after the last step):
//   lam_t = gv_t + (lam_{t+1} - a*lam_{t+1})
//   kap_t = gi_t + mu_{t+1}
//   mu_t  = a*lam_t + (kap_t - d*kap_t)
// and dL/dx_t = mu_t (written to dx[t]), dL/dv0 = lam_0 - a*lam_0 (to dv0),
// dL/di0 = mu_0 (to di0). gv_t of neuron n is gv[t*gv_step + n*gv_neuron]:
// (n_neurons, 1) for a contiguous sequence, 0 where it is broadcast (the
// gradient of a sum arrives as one number broadcast to every element). gi_t
// is gis[t] where gis is given (gradients of the recorded currents) plus, at
// the last step, gi_last[n] where that is given (the gradient of the final
// current); a null gradient is zero.
//
// In float (and __half) lam and mu are float-float pairs, in reverse time
// (where gis is null, kap, ek = mu, em):
//   kap, ek = two_sum(mu, gi_t);   ek = ek + em
//   lam, el = two_sum(lam, (gv_t - lam*a) + (el - el*a))
//   mu, em  = two_sum(kap, lam*a + (ek - kap*d))
// and dL/dv0 = (lam_0 - lam_0*a) + (el_0 - el_0*a); the high parts are written
// and enter the parameter gradients.
//
// Parameter gradients, when js is given (then v0 and voltages are too): each
// neuron's share of them, to be summed to each parameter's shape by the caller,
//   da[n] = sum_t lam_t*((v_leak - v_{t-1}) + j_t),   dd[n] = -sum_t kap_t*j_t,
//   dv_leak[n] = a * sum_t lam_t
// (v_{-1} = v0[n]), each product and sum in double (T terms summed in float
// would round log2(T) times and more), the products rounded on their own as
// the compiled CPU loop rounds them, the sums rounded once to the compute type.
template <typename T>
__global__ void LI_BACKWARD_BOUNDS li_scan_backward(
    const T* __restrict__ gv, long long gv_step, long long gv_neuron,
    const T* __restrict__ gis, const T* __restrict__ gi_last, Parameter<T> a, Parameter<T> d, Parameter<T> v_leak,
    const T* __restrict__ v0, const T* __restrict__ voltages, const T* __restrict__ js,
    T* __restrict__ dx, T* __restrict__ dv0, T* __restrict__ di0,
    typename Compute<T>::type* __restrict__ da, typename Compute<T>::type* __restrict__ dd,
    typename Compute<T>::type* __restrict__ dv_leak, long long steps, long long n_neurons) {
    typedef typename Compute<T>::type C;
    const long long n = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (n >= n_neurons) return;
    const C rate_v = value_at(a, n), rate_i = value_at(d, n), leak = value_at(v_leak, n);
    const bool parameters = js != nullptr;
    const long long stride = n_neurons;
    C lam = C(0), el = C(0);
    // mu_{t+1} before step t; at the last step it stands in for the final current's gradient
    C mu = gi_last != nullptr ? load(gi_last, n) : C(0), em = C(0);
    double sum_a = 0.0, sum_d = 0.0, sum_lam = 0.0;
    auto read = [&](long long t) {
        const long long k = t * stride + n;
        AdjointInput<C> in = {load(gv, t * gv_step + n * gv_neuron), gis != nullptr ? load(gis, k) : C(0), C(0), C(0)};
        if (parameters) {
            in.j = load(js, k);
            in.v_prev = t > 0 ? load(voltages, k - stride) : load(v0, n);
        }
        return in;
    };
    // Step t from its inputs, adding to the parameter sums.
    auto step = [&](const AdjointInput<C>& in, long long t) {
        C kap;
        if (Carries<C>::value) {
            C ek = em;
            kap = mu;
            if (gis != nullptr) {
                two_sum(mu, in.gi, kap, ek);
                ek = ek + em;
            }
            two_sum(lam, (in.gv - mul_rn(lam, rate_v)) + (el - mul_rn(el, rate_v)), lam, el);
            two_sum(kap, mul_rn(lam, rate_v) + (ek - mul_rn(kap, rate_i)), mu, em);
        } else {
            kap = in.gi + mu;
            lam = in.gv + (lam - rate_v * lam);
            mu = rate_v * lam + (kap - rate_i * kap);
        }
        store(dx, t * stride + n, mu);
        if (parameters) {
            sum_a += mul_rn(double(lam), double((leak - in.v_prev) + in.j));
            sum_d += mul_rn(double(kap), double(in.j));
            sum_lam += double(lam);
        }
    };
    const long long groups = steps / LI_BACKWARD_GROUP;
    long long t = steps - 1;  // the latest step not yet run
    AdjointInput<C> group[LI_BACKWARD_GROUP];
    if (groups > 0) {
#pragma unroll
        for (int u = 0; u < LI_BACKWARD_GROUP; ++u) group[u] = read(t - u);
    }
    for (long long g = 0; g < groups; ++g) {
        const bool more = g + 1 < groups;
        AdjointInput<C> next[LI_BACKWARD_GROUP];
        if (more) {
#pragma unroll
            for (int u = 0; u < LI_BACKWARD_GROUP; ++u) next[u] = read(t - LI_BACKWARD_GROUP - u);
        }
#pragma unroll
        for (int u = 0; u < LI_BACKWARD_GROUP; ++u, --t) step(group[u], t);
        if (more) {
#pragma unroll
            for (int u = 0; u < LI_BACKWARD_GROUP; ++u) group[u] = next[u];
        }
    }
    for (; t >= 0; --t) step(read(t), t);  // fewer than a group
    if (dv0 != nullptr) {
        if (Carries<C>::value) {
            store(dv0, n, (lam - mul_rn(lam, rate_v)) + (el - mul_rn(el, rate_v)));
        } else {
            store(dv0, n, lam - rate_v * lam);
        }
    }
    if (di0 != nullptr) store(di0, n, mu);
    if (parameters) {
        da[n] = C(sum_a);
        dd[n] = C(-sum_d);
        dv_leak[n] = C(double(rate_v) * sum_lam);
    }
}
