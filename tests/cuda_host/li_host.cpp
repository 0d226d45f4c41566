// Host build of li_backends/cupy/li_kernels.cu for tests/test_cupy_kernels.py.
//
// Every kernel instantiation is found by the name expression the backend hands
// to cupy.RawModule ("li_scan<float>", ...) and exposes its parameter list and
// a launcher that takes cuLaunchKernel-style arguments (see cuda_host.h).
#include "cuda_host.h"
#include "li_kernels.cu"

#include <cstring>
#include <string>

namespace {

// "p4" for a pointer to 4-byte elements, "f8" for a double, "i8" for a long long,
// "s48" for a 48-byte struct passed by value, ...
template <typename P>
std::string code() {
    if constexpr (std::is_pointer_v<P>) {
        return "p" + std::to_string(sizeof(std::remove_pointer_t<P>));
    } else if constexpr (std::is_class_v<P>) {
        return "s" + std::to_string(sizeof(P));
    } else {
        const char* kind = std::is_floating_point_v<P> ? "f" : std::is_signed_v<P> ? "i" : "u";
        return kind + std::to_string(sizeof(P));
    }
}

template <auto K>
struct Entry;

template <typename... P, void (*K)(P...)>
struct Entry<K> {
    static std::string signature() {
        std::string codes;
        ((codes += code<P>() + " "), ...);
        return codes;
    }
    static void run(unsigned grid, unsigned block, void** args) { launch(K, grid, block, args); }
};

struct Kernel {
    const char* name;
    std::string (*signature)();
    void (*run)(unsigned, unsigned, void**);
};

#define LI_KERNEL(...) Kernel{#__VA_ARGS__, Entry<&__VA_ARGS__>::signature, Entry<&__VA_ARGS__>::run}

const Kernel kernels[] = {
    LI_KERNEL(li_step<float>), LI_KERNEL(li_step<double>), LI_KERNEL(li_step<__half>),
    LI_KERNEL(li_scan<float>), LI_KERNEL(li_scan<double>), LI_KERNEL(li_scan<__half>),
    LI_KERNEL(li_scan_backward<float>), LI_KERNEL(li_scan_backward<double>), LI_KERNEL(li_scan_backward<__half>),
};

const Kernel* find(const char* name) {
    for (const Kernel& kernel : kernels) {
        if (std::strcmp(kernel.name, name) == 0) return &kernel;
    }
    return nullptr;
}

}  // namespace

extern "C" {

// The parameters of kernel `name` as space-separated codes, or null for an unknown name.
const char* li_host_signature(const char* name) {
    static std::string signature;
    const Kernel* kernel = find(name);
    if (kernel == nullptr) return nullptr;
    signature = kernel->signature();
    return signature.c_str();
}

// Runs kernel `name` on a 1-d grid; args[k] points to the k-th argument's value.
// Returns 0, or -1 for an unknown name.
int li_host_launch(const char* name, unsigned grid, unsigned block, void** args) {
    const Kernel* kernel = find(name);
    if (kernel == nullptr) return -1;
    kernel->run(grid, block, args);
    return 0;
}

}
