// Optimizer steps over flat 1-D buffers, one launch per parameter buffer.
//
// sgd_step<T, S>  (dampening = 0, PyTorch semantics; buf starts at zero):
//     g = grad + wd * p
//     if momentum != 0:  buf = momentum * buf + g
//                        g = nesterov ? g + momentum * buf : buf
//     p = p - lr * g
// adam_step<T, S>  (t = step, 1-based; bc1 = 1 - beta1^t, bc2 = 1 - beta2^t):
//     Adam  (decoupled = 0): g = grad + wd * p
//     AdamW (decoupled = 1): p = p - lr * wd * p;  g = grad
//     m = beta1 m + (1 - beta1) g;   v = beta2 v + (1 - beta2) g^2
//     p = p - (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps)
// The step-dependent scalars step_size = lr / bc1 and inv_sqrt_bc2 = 1 / sqrt(bc2)
// are computed on the host in fp64 and passed in.
//
// Layout: p, grad, buf, m, v are contiguous with n elements.
// Template parameters: T = parameter/grad type in {float, double, __half};
// S = optimizer-state type (buf, m, v): S == T, or S = float with T = __half
// (fp32 state for half parameters). Arithmetic in fp32 (fp64 for double).
// Grid-stride loop; every element is independent.
#include "common.cuh"

template <typename T, typename S>
__global__ void sgd_step(T* __restrict__ p, const T* __restrict__ grad, S* __restrict__ buf,
                         long long n, double lr, double momentum, double weight_decay,
                         int nesterov) {
    using A = typename gc::Acc<T>::type;
    const A lr_ = A(lr), mu = A(momentum), wd = A(weight_decay);
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        const A w = gc::to_acc(p[i]);
        A g = gc::to_acc(grad[i]) + wd * w;
        if (buf != nullptr) {
            const A b = mu * A(gc::to_acc(buf[i])) + g;
            buf[i] = gc::from_acc<S>(b);
            g = nesterov ? g + mu * b : b;
        }
        p[i] = gc::from_acc<T>(w - lr_ * g);
    }
}

template <typename T, typename S>
__global__ void adam_step(T* __restrict__ p, const T* __restrict__ grad, S* __restrict__ m,
                          S* __restrict__ v, long long n, double lr, double beta1, double beta2,
                          double eps, double weight_decay, double step_size, double inv_sqrt_bc2,
                          int decoupled) {
    using A = typename gc::Acc<T>::type;
    const A b1 = A(beta1), b2 = A(beta2), eps_ = A(eps), wd = A(weight_decay);
    const A ss = A(step_size), isb2 = A(inv_sqrt_bc2), decay = A(1) - A(lr) * wd;
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        A w = gc::to_acc(p[i]);
        A g = gc::to_acc(grad[i]);
        if (decoupled) {
            w *= decay;
        } else {
            g += wd * w;
        }
        const A mi = b1 * A(gc::to_acc(m[i])) + (A(1) - b1) * g;
        const A vi = b2 * A(gc::to_acc(v[i])) + (A(1) - b2) * g * g;
        m[i] = gc::from_acc<S>(mi);
        v[i] = gc::from_acc<S>(vi);
        p[i] = gc::from_acc<T>(w - ss * mi / (sqrt(vi) * isb2 + eps_));
    }
}
