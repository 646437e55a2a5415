// Shared device helpers for gpuchain kernels.
//
// - Acc<T>: accumulation type (float for __half and float, double for double).
// - to_acc / from_acc: conversions between storage and accumulation types.
// - The activation table (GC_ACTIVATION_TABLE) and one struct per activation.
//
// Adding an activation: write its struct below and add ONE line to
// GC_ACTIVATION_TABLE. The Python side (gpuchain/cuda/loader.py) parses that
// table, so the activation ids, names and "saves output" flags live only here.
#pragma once
#include <cuda_fp16.h>

namespace gc {

template <typename T> struct Acc { using type = float; };
template <> struct Acc<double> { using type = double; };

__device__ __forceinline__ float to_acc(__half x) { return __half2float(x); }
__device__ __forceinline__ float to_acc(float x) { return x; }
__device__ __forceinline__ double to_acc(double x) { return x; }

template <typename T> __device__ __forceinline__ T from_acc(float x);
template <> __device__ __forceinline__ __half from_acc<__half>(float x) {
    return __float2half_rn(x);
}
template <> __device__ __forceinline__ float from_acc<float>(float x) { return x; }
template <typename T> __device__ __forceinline__ T from_acc(double x) { return (T)x; }

// NVRTC has no <cmath>, hence no INFINITY / NAN macros.
template <typename A> __device__ __forceinline__ A inf();
template <> __device__ __forceinline__ float inf<float>() { return __int_as_float(0x7f800000); }
template <> __device__ __forceinline__ double inf<double>() {
    return __longlong_as_double(0x7ff0000000000000LL);
}
template <typename A> __device__ __forceinline__ A nan();
template <> __device__ __forceinline__ float nan<float>() { return __int_as_float(0x7fc00000); }
template <> __device__ __forceinline__ double nan<double>() {
    return __longlong_as_double(0x7ff8000000000000LL);
}

// ---------------------------------------------------------------------------
// Activations. Each struct has
//   fwd(z, slope)     -> a
//   grad(saved, slope) -> da/dz, where saved is the OUTPUT a when
//                        kSavesOutput, else the pre-activation z.
// A is float or double (the accumulation type).
// ---------------------------------------------------------------------------

struct ActIdentity {
    static constexpr bool kSavesOutput = true;
    template <typename A> __device__ static A fwd(A z, A) { return z; }
    template <typename A> __device__ static A grad(A, A) { return A(1); }
};

struct ActRelu {
    static constexpr bool kSavesOutput = true;
    template <typename A> __device__ static A fwd(A z, A) { return z > A(0) ? z : A(0); }
    // relu'(0) = 0
    template <typename A> __device__ static A grad(A a, A) { return a > A(0) ? A(1) : A(0); }
};

struct ActLeakyRelu {
    // Requires slope >= 0 so that sign(a) == sign(z); leaky'(0) = slope.
    static constexpr bool kSavesOutput = true;
    template <typename A> __device__ static A fwd(A z, A s) { return z > A(0) ? z : s * z; }
    template <typename A> __device__ static A grad(A a, A s) { return a > A(0) ? A(1) : s; }
};

template <typename A> __device__ __forceinline__ A stable_sigmoid(A z) {
    // Never exponentiates a positive number, so no overflow to inf/inf.
    if (z >= A(0)) {
        return A(1) / (A(1) + exp(-z));
    }
    const A e = exp(z);
    return e / (A(1) + e);
}

struct ActSigmoid {
    static constexpr bool kSavesOutput = true;
    template <typename A> __device__ static A fwd(A z, A) { return stable_sigmoid(z); }
    template <typename A> __device__ static A grad(A a, A) { return a * (A(1) - a); }
};

struct ActTanh {
    static constexpr bool kSavesOutput = true;
    template <typename A> __device__ static A fwd(A z, A) { return tanh(z); }
    template <typename A> __device__ static A grad(A a, A) { return A(1) - a * a; }
};

struct ActGelu {
    // gelu(z) = z * Phi(z) = 0.5 z (1 + erf(z / sqrt 2));  gelu' = Phi(z) + z phi(z)
    static constexpr bool kSavesOutput = false;
    template <typename A> __device__ static A fwd(A z, A) {
        return A(0.5) * z * (A(1) + erf(z * A(0.70710678118654752440)));
    }
    template <typename A> __device__ static A grad(A z, A) {
        const A cdf = A(0.5) * (A(1) + erf(z * A(0.70710678118654752440)));
        const A pdf = A(0.39894228040143267794) * exp(A(-0.5) * z * z);
        return cdf + z * pdf;
    }
};

struct ActGeluTanh {
    // u = sqrt(2/pi) (z + 0.044715 z^3);  gelu_tanh(z) = 0.5 z (1 + tanh u)
    static constexpr bool kSavesOutput = false;
    template <typename A> __device__ static A fwd(A z, A) {
        const A u = A(0.79788456080286535588) * (z + A(0.044715) * z * z * z);
        return A(0.5) * z * (A(1) + tanh(u));
    }
    template <typename A> __device__ static A grad(A z, A) {
        const A z2 = z * z;
        const A t = tanh(A(0.79788456080286535588) * (z + A(0.044715) * z2 * z));
        const A du = A(0.79788456080286535588) * (A(1) + A(3 * 0.044715) * z2);
        return A(0.5) * (A(1) + t) + A(0.5) * z * (A(1) - t * t) * du;
    }
};

struct ActSilu {
    // silu(z) = z sigma(z);  silu' = sigma(z) (1 + z (1 - sigma(z)))
    static constexpr bool kSavesOutput = false;
    template <typename A> __device__ static A fwd(A z, A) { return z * stable_sigmoid(z); }
    template <typename A> __device__ static A grad(A z, A) {
        const A s = stable_sigmoid(z);
        return s * (A(1) + z * (A(1) - s));
    }
};

struct ActSoftplus {
    // softplus(z) = log(1 + e^z) = max(z, 0) + log1p(e^-|z|);  softplus' = sigma(z)
    static constexpr bool kSavesOutput = false;
    template <typename A> __device__ static A fwd(A z, A) {
        return (z > A(0) ? z : A(0)) + log1p(exp(-fabs(z)));
    }
    template <typename A> __device__ static A grad(A z, A) { return stable_sigmoid(z); }
};

struct ActElu {
    // elu(z) = z for z > 0, else e^z - 1;  elu' = 1 for z > 0, else e^z = a + 1
    static constexpr bool kSavesOutput = true;
    template <typename A> __device__ static A fwd(A z, A) { return z > A(0) ? z : expm1(z); }
    template <typename A> __device__ static A grad(A a, A) { return a > A(0) ? A(1) : a + A(1); }
};

// THE activation table: X(id, python_name, struct). Ids are the template
// argument of the kernels; keep them dense and starting at 0.
#define GC_ACTIVATION_TABLE(X)       \
    X(0, identity, ActIdentity)      \
    X(1, relu, ActRelu)              \
    X(2, leaky_relu, ActLeakyRelu)   \
    X(3, sigmoid, ActSigmoid)        \
    X(4, tanh, ActTanh)              \
    X(5, gelu, ActGelu)              \
    X(6, gelu_tanh, ActGeluTanh)     \
    X(7, silu, ActSilu)              \
    X(8, softplus, ActSoftplus)      \
    X(9, elu, ActElu)

template <int ID> struct ActById;
#define GC_ACT_BY_ID(id, name, S) \
    template <> struct ActById<id> { using type = S; };
GC_ACTIVATION_TABLE(GC_ACT_BY_ID)
#undef GC_ACT_BY_ID

// Launch geometry shared by the 2-D (rows x columns) epilogue kernels:
// blockDim = (bx, by) with bx a power of two in [32, 256] and bx * by = 256.
// Each thread owns one column and walks rows with stride gridDim.y * by.
constexpr int kBlock = 256;

}  // namespace gc
