// Fused softmax + cross-entropy (negative log-likelihood of integer labels).
//
// Forward  softmax_xent_fwd<T, L>:  for each row i of logits x (B, C)
//     m_i = max_j x_ij,  s_i = sum_j exp(x_ij - m_i)           (stable log-sum-exp)
//     p_ij = exp(x_ij - m_i) / s_i
//     loss_i = m_i + log(s_i) - x_i,label_i
// Backward softmax_xent_bwd<T, L>:
//     dlogits_ij = g_i * (p_ij - [j == label_i])
//
// Layout: logits, probs, dlogits row-major (B, C) C-contiguous; labels, loss,
// g (B,). A label outside [0, C) gives a NaN loss and a NaN gradient row.
// Template parameters: T in {float, double, __half} (math in fp32 for __half,
// fp64 for double), L in {int, long long} (label dtype int32 / int64).
//
// Forward: one block per row (grid-stride over rows), blockDim.x a multiple of
// 32 (<= 1024). Each thread keeps an online (max, sum) over its strided columns,
// then a warp-shuffle and shared-memory merge combines them in a fixed order.
// dlogits may alias probs.
#include "common.cuh"

namespace gc {

template <typename A> struct MaxSum {
    A m;
    A s;
};

template <typename A> __device__ __forceinline__ MaxSum<A> merge(MaxSum<A> x, MaxSum<A> y) {
    // exp(-inf - -inf) would be NaN: an all -inf side contributes nothing.
    if (x.m == -inf<A>()) return y;
    if (y.m == -inf<A>()) return x;
    const A m = x.m > y.m ? x.m : y.m;
    return {m, x.s * exp(x.m - m) + y.s * exp(y.m - m)};
}

template <typename A> __device__ MaxSum<A> block_max_sum(MaxSum<A> v) {
    __shared__ A sm[32];
    __shared__ A ss[32];
    for (int off = 16; off > 0; off >>= 1) {
        MaxSum<A> o;
        o.m = __shfl_down_sync(0xffffffffu, v.m, off);
        o.s = __shfl_down_sync(0xffffffffu, v.s, off);
        v = merge(v, o);
    }
    const int lane = threadIdx.x & 31;
    const int warp = threadIdx.x >> 5;
    const int nwarps = blockDim.x >> 5;
    if (lane == 0) {
        sm[warp] = v.m;
        ss[warp] = v.s;
    }
    __syncthreads();
    if (warp == 0) {
        v = lane < nwarps ? MaxSum<A>{sm[lane], ss[lane]} : MaxSum<A>{-gc::inf<A>(), A(0)};
        for (int off = 16; off > 0; off >>= 1) {
            MaxSum<A> o;
            o.m = __shfl_down_sync(0xffffffffu, v.m, off);
            o.s = __shfl_down_sync(0xffffffffu, v.s, off);
            v = merge(v, o);
        }
        if (lane == 0) {
            sm[0] = v.m;
            ss[0] = v.s;
        }
    }
    __syncthreads();
    const MaxSum<A> r{sm[0], ss[0]};
    __syncthreads();  // sm/ss are reused by the next row
    return r;
}

}  // namespace gc

template <typename T, typename L>
__global__ void softmax_xent_fwd(const T* __restrict__ logits, const L* __restrict__ labels,
                                 T* __restrict__ loss, T* __restrict__ probs, long long rows,
                                 int cols) {
    using A = typename gc::Acc<T>::type;
    for (long long r = blockIdx.x; r < rows; r += gridDim.x) {
        const T* x = logits + r * cols;
        gc::MaxSum<A> v{-gc::inf<A>(), A(0)};
        for (int j = threadIdx.x; j < cols; j += blockDim.x) {
            v = gc::merge(v, gc::MaxSum<A>{gc::to_acc(x[j]), A(1)});
        }
        v = gc::block_max_sum(v);
        const A inv = A(1) / v.s;
        T* p = probs + r * cols;
        for (int j = threadIdx.x; j < cols; j += blockDim.x) {
            p[j] = gc::from_acc<T>(exp(gc::to_acc(x[j]) - v.m) * inv);
        }
        if (threadIdx.x == 0) {
            const long long lab = (long long)labels[r];
            const A picked = (lab >= 0 && lab < cols) ? gc::to_acc(x[lab]) : gc::nan<A>();
            loss[r] = gc::from_acc<T>(v.m + log(v.s) - picked);
        }
    }
}

template <typename T, typename L>
__global__ void softmax_xent_bwd(const T* probs, const L* __restrict__ labels,
                                 const T* __restrict__ g, T* dlogits, long long rows, int cols) {
    using A = typename gc::Acc<T>::type;
    const int col = blockIdx.x * blockDim.x + threadIdx.x;
    if (col >= cols) return;
    const long long stride = (long long)gridDim.y * blockDim.y;
    for (long long r = (long long)blockIdx.y * blockDim.y + threadIdx.y; r < rows; r += stride) {
        const long long lab = (long long)labels[r];
        const A gr = gc::to_acc(g[r]);
        const long long i = r * cols + col;
        A d = gc::to_acc(probs[i]) - (col == lab ? A(1) : A(0));
        if (lab < 0 || lab >= cols) d = gc::nan<A>();
        dlogits[i] = gc::from_acc<T>(gr * d);
    }
}
