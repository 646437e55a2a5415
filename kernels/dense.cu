// Dense-layer epilogues around a GEMM z = x W (the GEMM itself is cuBLAS).
//
// Ops (s = z + b, f = activation, f' its derivative, see common.cuh):
//   bias_act_fwd<T, ACT>      a = f(z + b); optionally z <- z + b (saved pre-activation)
//   act_grad_bias<T, ACT>     dz = g * f'(saved); stage 1 of db = sum_rows dz
//   column_sum_finalize<T>    stage 2 of db: fixed-order sum of per-block partials
//   dense_jvp<T, ACT>         a = f(z + b);  adot = f'(z + b) * (zdot + bdot)
//
// Layout: z, a, g, dz, zdot, adot are row-major (B, n), C-contiguous; b, bdot,
// db are (n,). saved is a (output) for activations with kSavesOutput, else z.
// Template parameters: T in {float, double, __half} (storage type; arithmetic
// in Acc<T>: fp32 for __half), ACT = activation id from GC_ACTIVATION_TABLE.
//
// Aliasing: a may alias z, dz may alias g, adot may alias zdot (each element
// is read and written by the same thread), so pointers are not __restrict__.
//
// The db reduction is deterministic: stage 1 writes one partial column sum per
// blockIdx.y into `partial` (gridDim.y x n, Acc<T>), summing rows in a fixed
// order and reducing threadIdx.y with a fixed tree; stage 2 sums the partials
// of each column sequentially. No float atomics. The grid depends only on the
// shape (chosen by the launcher), so equal inputs give equal bits.
#include "common.cuh"

template <typename T, int ACT>
__global__ void bias_act_fwd(T* z, const T* b, T* a, long long rows, int n, double slope,
                             int store_preact) {
    using A = typename gc::Acc<T>::type;
    using F = typename gc::ActById<ACT>::type;
    const int col = blockIdx.x * blockDim.x + threadIdx.x;
    if (col >= n) return;
    const A bias = b ? gc::to_acc(b[col]) : A(0);
    const A s = A(slope);
    const long long stride = (long long)gridDim.y * blockDim.y;
    for (long long r = (long long)blockIdx.y * blockDim.y + threadIdx.y; r < rows; r += stride) {
        const long long i = r * n + col;
        const A pre = gc::to_acc(z[i]) + bias;
        if (store_preact) z[i] = gc::from_acc<T>(pre);
        a[i] = gc::from_acc<T>(F::template fwd<A>(pre, s));
    }
}

template <typename T, int ACT>
__global__ void act_grad_bias(const T* g, const T* saved, T* dz, long long rows, int n,
                              double slope, typename gc::Acc<T>::type* partial) {
    using A = typename gc::Acc<T>::type;
    using F = typename gc::ActById<ACT>::type;
    __shared__ A sh[gc::kBlock];
    const int col = blockIdx.x * blockDim.x + threadIdx.x;
    const A s = A(slope);
    A acc = A(0);
    if (col < n) {
        const long long stride = (long long)gridDim.y * blockDim.y;
        for (long long r = (long long)blockIdx.y * blockDim.y + threadIdx.y; r < rows;
             r += stride) {
            const long long i = r * n + col;
            const A d = gc::to_acc(g[i]) * F::template grad<A>(gc::to_acc(saved[i]), s);
            dz[i] = gc::from_acc<T>(d);
            acc += d;
        }
    }
    if (partial == nullptr) return;  // uniform across the grid
    const int t = threadIdx.y * blockDim.x + threadIdx.x;
    sh[t] = acc;
    __syncthreads();
    for (int half = blockDim.y >> 1; half > 0; half >>= 1) {
        if (threadIdx.y < half) sh[t] += sh[t + half * blockDim.x];
        __syncthreads();
    }
    if (threadIdx.y == 0 && col < n) partial[(long long)blockIdx.y * n + col] = sh[t];
}

template <typename T>
__global__ void column_sum_finalize(const typename gc::Acc<T>::type* partial, T* db, int parts,
                                    int n) {
    using A = typename gc::Acc<T>::type;
    for (int col = blockIdx.x * blockDim.x + threadIdx.x; col < n;
         col += gridDim.x * blockDim.x) {
        A acc = A(0);
        for (int p = 0; p < parts; ++p) acc += partial[(long long)p * n + col];
        db[col] = gc::from_acc<T>(acc);
    }
}

template <typename T, int ACT>
__global__ void dense_jvp(const T* z, const T* b, const T* zdot, const T* bdot, T* a, T* adot,
                          long long rows, int n, double slope) {
    using A = typename gc::Acc<T>::type;
    using F = typename gc::ActById<ACT>::type;
    const int col = blockIdx.x * blockDim.x + threadIdx.x;
    if (col >= n) return;
    const A bias = b ? gc::to_acc(b[col]) : A(0);
    const A bias_dot = bdot ? gc::to_acc(bdot[col]) : A(0);
    const A s = A(slope);
    const long long stride = (long long)gridDim.y * blockDim.y;
    for (long long r = (long long)blockIdx.y * blockDim.y + threadIdx.y; r < rows; r += stride) {
        const long long i = r * n + col;
        const A pre = gc::to_acc(z[i]) + bias;
        const A out = F::template fwd<A>(pre, s);
        const A d = F::template grad<A>(F::kSavesOutput ? out : pre, s);
        const A tangent = gc::to_acc(zdot[i]) + bias_dot;
        a[i] = gc::from_acc<T>(out);
        adot[i] = gc::from_acc<T>(d * tangent);
    }
}
