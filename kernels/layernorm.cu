// Layer normalization over the last axis of a (rows, n) C-contiguous array.
//
// layernorm_fwd<T>:  per row r (one block per row, grid-stride over rows)
//     mean = sum(x) / n;  var = sum((x - mean)^2) / n;  rstd = 1 / sqrt(var + eps)
//     y = (x - mean) * rstd * w + b;  mean_out[r] = mean;  rstd_out[r] = rstd
// layernorm_bwd<T>:  per row r, with xhat = (x - mean) * rstd and gw = g * w
//     c1 = sum(gw * xhat) / n;  c2 = sum(gw) / n
//     dx = (gw - c2 - xhat * c1) * rstd
//     partial_dw[block, j] += g * xhat;  partial_db[block, j] += g   (each block owns a row
//     of the partial buffers; zeroed by the block first; deterministic)
// layernorm_bwd_finalize<T>:  dw[j] = sum over blocks of partial_dw[., j]; same for db.
//
// The row statistics are computed in the accumulation type A (float for __half and
// float, double for double) and stored in T. Block size: a power of two <= gc::kBlock.
// Reductions go through shared memory, so every thread of a block reaches every
// __syncthreads (the row loop bound is uniform across the block).
#include "common.cuh"

namespace {

template <typename A>
__device__ A block_sum(A v, A* sh) {
    const int t = threadIdx.x;
    sh[t] = v;
    __syncthreads();
    for (int half = blockDim.x >> 1; half > 0; half >>= 1) {
        if (t < half) sh[t] += sh[t + half];
        __syncthreads();
    }
    const A out = sh[0];
    __syncthreads();  // sh is reused by the next reduction
    return out;
}

}  // namespace

template <typename T>
__global__ void layernorm_fwd(const T* __restrict__ x, const T* __restrict__ w,
                              const T* __restrict__ b, T* __restrict__ y, T* __restrict__ mean_out,
                              T* __restrict__ rstd_out, long long rows, int n, double eps) {
    using A = typename gc::Acc<T>::type;
    __shared__ A sh[gc::kBlock];
    const A inv_n = A(1) / A(n);
    for (long long r = blockIdx.x; r < rows; r += gridDim.x) {
        const T* xr = x + r * n;
        A s = A(0);
        for (int j = threadIdx.x; j < n; j += blockDim.x) s += gc::to_acc(xr[j]);
        const A mean = block_sum(s, sh) * inv_n;
        A v = A(0);
        for (int j = threadIdx.x; j < n; j += blockDim.x) {
            const A d = gc::to_acc(xr[j]) - mean;
            v += d * d;
        }
        const A rstd = A(1) / sqrt(block_sum(v, sh) * inv_n + A(eps));
        T* yr = y + r * n;
        for (int j = threadIdx.x; j < n; j += blockDim.x) {
            const A xhat = (gc::to_acc(xr[j]) - mean) * rstd;
            yr[j] = gc::from_acc<T>(xhat * gc::to_acc(w[j]) + gc::to_acc(b[j]));
        }
        if (threadIdx.x == 0) {
            mean_out[r] = gc::from_acc<T>(mean);
            rstd_out[r] = gc::from_acc<T>(rstd);
        }
    }
}

template <typename T>
__global__ void layernorm_bwd(const T* __restrict__ g, const T* __restrict__ x,
                              const T* __restrict__ w, const T* __restrict__ mean,
                              const T* __restrict__ rstd, T* __restrict__ dx,
                              typename gc::Acc<T>::type* __restrict__ partial_dw,
                              typename gc::Acc<T>::type* __restrict__ partial_db, long long rows,
                              int n) {
    using A = typename gc::Acc<T>::type;
    __shared__ A sh[gc::kBlock];
    const A inv_n = A(1) / A(n);
    A* pdw = partial_dw + (long long)blockIdx.x * n;
    A* pdb = partial_db + (long long)blockIdx.x * n;
    for (int j = threadIdx.x; j < n; j += blockDim.x) {
        pdw[j] = A(0);
        pdb[j] = A(0);
    }
    for (long long r = blockIdx.x; r < rows; r += gridDim.x) {
        const T* xr = x + r * n;
        const T* gr = g + r * n;
        const A m = gc::to_acc(mean[r]);
        const A rs = gc::to_acc(rstd[r]);
        A s1 = A(0), s2 = A(0);
        for (int j = threadIdx.x; j < n; j += blockDim.x) {
            const A gj = gc::to_acc(gr[j]);
            const A xhat = (gc::to_acc(xr[j]) - m) * rs;
            const A gw = gj * gc::to_acc(w[j]);
            s1 += gw * xhat;
            s2 += gw;
            pdw[j] += gj * xhat;  // column j belongs to this thread: no race
            pdb[j] += gj;
        }
        const A c1 = block_sum(s1, sh) * inv_n;
        const A c2 = block_sum(s2, sh) * inv_n;
        T* dxr = dx + r * n;
        for (int j = threadIdx.x; j < n; j += blockDim.x) {
            const A xhat = (gc::to_acc(xr[j]) - m) * rs;
            const A gw = gc::to_acc(gr[j]) * gc::to_acc(w[j]);
            dxr[j] = gc::from_acc<T>((gw - c2 - xhat * c1) * rs);
        }
    }
}

template <typename T>
__global__ void layernorm_bwd_finalize(const typename gc::Acc<T>::type* __restrict__ partial_dw,
                                       const typename gc::Acc<T>::type* __restrict__ partial_db,
                                       T* __restrict__ dw, T* __restrict__ db, int parts, int n) {
    using A = typename gc::Acc<T>::type;
    for (int j = blockIdx.x * blockDim.x + threadIdx.x; j < n; j += gridDim.x * blockDim.x) {
        A sw = A(0), sb = A(0);
        for (int p = 0; p < parts; ++p) {
            sw += partial_dw[(long long)p * n + j];
            sb += partial_db[(long long)p * n + j];
        }
        dw[j] = gc::from_acc<T>(sw);
        db[j] = gc::from_acc<T>(sb);
    }
}

