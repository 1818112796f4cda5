"""Reference solutions (kept in the tests, never shipped) and classic wrong ones, as source text."""

CONV = '''
import numpy as np

def _pad(x, p):
    return np.pad(x, [(0, 0)] * (x.ndim - 2) + [(p, p), (p, p)])

def conv2d_forward(x, w, b, stride=1, padding=0):
    xp = _pad(x, padding)
    N, C, H, W = xp.shape
    F, _, KH, KW = w.shape
    Ho, Wo = (H - KH) // stride + 1, (W - KW) // stride + 1
    out = np.zeros((N, F, Ho, Wo), dtype=x.dtype)
    for u in range(KH):
        for v in range(KW):
            patch = xp[:, :, u:u + stride * (Ho - 1) + 1:stride, v:v + stride * (Wo - 1) + 1:stride]
            out += np.einsum("nchw,fc->nfhw", patch, w[:, :, u, v])
    return out + b.reshape(1, -1, 1, 1)

def conv2d_backward(dout, x, w, b, stride=1, padding=0):
    xp = _pad(x, padding)
    F, C, KH, KW = w.shape
    Ho, Wo = dout.shape[2:]
    dxp, dw = np.zeros_like(xp), np.zeros_like(w)
    for u in range(KH):
        for v in range(KW):
            sl = (slice(None), slice(None), slice(u, u + stride * (Ho - 1) + 1, stride),
                  slice(v, v + stride * (Wo - 1) + 1, stride))
            dw[:, :, u, v] = np.einsum("nfhw,nchw->fc", dout, xp[sl])
            dxp[sl] += np.einsum("nfhw,fc->nchw", dout, w[:, :, u, v])
    H, W = x.shape[2:]
    return dxp[:, :, padding:padding + H, padding:padding + W], dw, dout.sum(axis=(0, 2, 3))
'''

RELU = '''
import numpy as np
def relu_forward(x):
    return np.maximum(x, 0)
def relu_backward(dout, x):
    return dout * (x > 0)
'''

DENSE = '''
import numpy as np
def dense_forward(x, w, b):
    return x @ w + b
def dense_backward(dout, x, w):
    return dout @ w.T, x.T @ dout, dout.sum(axis=0)
'''

SOLUTIONS = {
    "output_size": '''
def conv_output_size(n, kernel, stride=1, padding=0):
    return (n + 2 * padding - kernel) // stride + 1
''',
    "convolve2d": '''
import numpy as np
def convolve2d(image, kernel):
    H, W = image.shape
    KH, KW = kernel.shape
    out = np.zeros((H - KH + 1, W - KW + 1), dtype=image.dtype)
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = np.sum(image[i:i + KH, j:j + KW] * kernel)
    return out
''',
    "convolve2d_stride_padding": '''
import numpy as np
def convolve2d(image, kernel, stride=1, padding=0):
    image = np.pad(image, padding)
    H, W = image.shape
    KH, KW = kernel.shape
    out = np.zeros(((H - KH) // stride + 1, (W - KW) // stride + 1), dtype=image.dtype)
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = np.sum(image[i * stride:i * stride + KH, j * stride:j * stride + KW] * kernel)
    return out
''',
    "conv2d_forward": CONV,
    "conv2d_backward": CONV,
    "relu": RELU,
    "maxpool": '''
import numpy as np
def maxpool_forward(x, pool_size=2, stride=2):
    N, C, H, W = x.shape
    Ho, Wo = (H - pool_size) // stride + 1, (W - pool_size) // stride + 1
    out = np.zeros((N, C, Ho, Wo), dtype=x.dtype)
    for i in range(Ho):
        for j in range(Wo):
            out[:, :, i, j] = x[:, :, i*stride:i*stride+pool_size, j*stride:j*stride+pool_size].max(axis=(2, 3))
    return out
def maxpool_backward(dout, x, pool_size=2, stride=2):
    dx = np.zeros_like(x)
    N, C, Ho, Wo = dout.shape
    for n in range(N):
        for c in range(C):
            for i in range(Ho):
                for j in range(Wo):
                    win = x[n, c, i*stride:i*stride+pool_size, j*stride:j*stride+pool_size]
                    u, v = divmod(int(np.argmax(win)), pool_size)
                    dx[n, c, i*stride+u, j*stride+v] += dout[n, c, i, j]
    return dx
''',
    "avgpool": '''
import numpy as np
def avgpool_forward(x, pool_size=2, stride=2):
    N, C, H, W = x.shape
    Ho, Wo = (H - pool_size) // stride + 1, (W - pool_size) // stride + 1
    out = np.zeros((N, C, Ho, Wo), dtype=x.dtype)
    for i in range(Ho):
        for j in range(Wo):
            out[:, :, i, j] = x[:, :, i*stride:i*stride+pool_size, j*stride:j*stride+pool_size].mean(axis=(2, 3))
    return out
def avgpool_backward(dout, x, pool_size=2, stride=2):
    dx = np.zeros_like(x)
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            dx[:, :, i*stride:i*stride+pool_size, j*stride:j*stride+pool_size] += dout[:, :, i:i+1, j:j+1] / pool_size**2
    return dx
''',
    "softmax_ce": '''
import numpy as np
def softmax_cross_entropy(logits, labels):
    z = logits - logits.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    n = len(labels)
    loss = -float(np.mean(logp[np.arange(n), labels]))
    d = np.exp(logp)
    d[np.arange(n), labels] -= 1
    return loss, d / n
''',
    "dense": DENSE,
    "batchnorm": '''
import numpy as np
def batchnorm_forward(x, gamma, beta, eps=1e-5):
    return (x - x.mean(0)) / np.sqrt(x.var(0) + eps) * gamma + beta
def batchnorm_backward(dout, x, gamma, eps=1e-5):
    inv = 1 / np.sqrt(x.var(0) + eps)
    xhat = (x - x.mean(0)) * inv
    dx = gamma * inv * (dout - dout.mean(0) - xhat * (dout * xhat).mean(0))
    return dx, (dout * xhat).sum(0), dout.sum(0)
''',
    "sobel": '''
import numpy as np
V = np.array([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]])
def sobel_kernels():
    return V, V.T
def checkerboard(n=8):
    return (np.indices((n, n)).sum(axis=0) % 2).astype(float)
def _conv(image, k):
    out = np.zeros((image.shape[0] - 2, image.shape[1] - 2))
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = np.sum(image[i:i + 3, j:j + 3] * k)
    return out
def edge_maps(image):
    return _conv(image, V), _conv(image, V.T)
''',
    "equivariance": '''
import numpy as np
def shift_right(image, k):
    return np.roll(image, k, axis=1)
def conv_same_wrap(image, kernel):
    KH, KW = kernel.shape
    p = np.pad(image, ((KH // 2, KH // 2), (KW // 2, KW // 2)), mode="wrap")
    out = np.zeros(image.shape)
    for i in range(image.shape[0]):
        for j in range(image.shape[1]):
            out[i, j] = np.sum(p[i:i + KH, j:j + KW] * kernel)
    return out
''',
    "conv_matrix": '''
import numpy as np
def conv_matrix(kernel):
    M = np.zeros((16, 36))
    for i in range(4):
        for j in range(4):
            for u in range(3):
                for v in range(3):
                    M[4 * i + j, 6 * (i + u) + (j + v)] = kernel[u, v]
    return M
''',
    "challenge": CONV + RELU + DENSE,
}

# classic wrong solutions: (exercise, replace this, by this, the hint key expected)
WRONG = [
    ("output_size", "+ 1", "", "no_plus_one"),
    ("output_size", "2 * padding", "padding", "padding_once"),
    ("output_size", "// stride + 1", "/ stride + 1", "no_floor"),
    ("convolve2d", "kernel)\n    return out", "kernel[::-1, ::-1])\n    return out", "flipped"),
    ("convolve2d", "(H - KH + 1, W - KW + 1)", "(H - KH, W - KW)", "off_by_one"),
    ("convolve2d_stride_padding", "i * stride:i * stride + KH, j * stride:j * stride + KW",
     "i:i + KH, j:j + KW", None),  # windows every pixel but the stride's output size: no variant, still fails
    ("convolve2d_stride_padding", "((H - KH) // stride + 1, (W - KW) // stride + 1)", "(H - KH + 1, W - KW + 1)",
     None),  # index error past the border: reported as an exception
    ("convolve2d_stride_padding", "def convolve2d(image, kernel, stride=1, padding=0):\n",
     "def convolve2d(image, kernel, stride=1, padding=0):\n    stride = 1\n", "stride_ignored"),
    ("convolve2d_stride_padding", "image = np.pad(image, padding)", "pass", "padding_ignored"),
    ("convolve2d_stride_padding", "image = np.pad(image, padding)", "image = np.pad(image, ((padding, 0), (padding, 0)))",
     "pad_one_side"),
    ("conv2d_forward", "    return out + b.reshape(1, -1, 1, 1)\n", "    return out\n", "no_bias"),
    ("conv2d_forward", 'out += np.einsum("nchw,fc->nfhw", patch, w[:, :, u, v])',
     'out += np.einsum("nchw,fc->nfhw", patch, w[:, :, KH - 1 - u, KW - 1 - v])', "flipped"),
    ("conv2d_backward", 'dxp[sl] += np.einsum("nfhw,fc->nchw", dout, w[:, :, u, v])',
     'dxp[sl] += np.einsum("nfhw,fc->nchw", dout, w[:, :, KH - 1 - u, KW - 1 - v])', "dx_not_flipped"),
    ("conv2d_backward", "return dxp[:, :, padding:padding + H, padding:padding + W], dw",
     "return dxp, dw", "dx_padding_kept"),
    ("conv2d_backward", "dout.sum(axis=(0, 2, 3))", "dout[0].sum(axis=(1, 2))", "db_not_summed"),
    ("conv2d_backward", "dout.sum(axis=(0, 2, 3))", "dout.mean(axis=(0, 2, 3))", "db_mean"),
    ("relu", "return dout * (x > 0)", "return (x > 0).astype(x.dtype)", "mask_only"),
    ("relu", "return dout * (x > 0)", "return dout * (x >= 0)", "ge_zero"),
    ("maxpool", "u, v = divmod(int(np.argmax(win)), pool_size)\n                    dx[n, c, i*stride+u, j*stride+v] += dout[n, c, i, j]",
     "dx[n, c, i*stride:i*stride+pool_size, j*stride:j*stride+pool_size] += (win == win.max()) * dout[n, c, i, j]",
     "all_ties"),
    ("maxpool", "win = x[n, c, i*stride:i*stride+pool_size, j*stride:j*stride+pool_size]\n"
                "                    u, v = divmod(int(np.argmax(win)), pool_size)\n"
                "                    dx[n, c, i*stride+u, j*stride+v]",
     "win = x[n, c, i*pool_size:i*pool_size+pool_size, j*pool_size:j*pool_size+pool_size]\n"
     "                    if win.size < pool_size * pool_size: continue\n"
     "                    u, v = divmod(int(np.argmax(win)), pool_size)\n"
     "                    dx[n, c, i*pool_size+u, j*pool_size+v]", "stride_ignored"),
    ("maxpool", "dx[n, c, i*stride+u, j*stride+v] += dout", "dx[n, c, i*stride+u, j*stride+v] = dout", "overwrite"),
    ("avgpool", "/ pool_size**2\n", "\n", "no_divide"),
    ("avgpool", ".mean(axis=(2, 3))", ".sum(axis=(2, 3))", "sum"),
    ("softmax_ce", "z = logits - logits.max(axis=1, keepdims=True)", "z = logits", "non_finite"),
    ("softmax_ce", "return loss, d / n", "return loss, d", "grad_not_divided"),
    ("softmax_ce", "    d[np.arange(n), labels] -= 1\n", "", "no_minus_one"),
    ("dense", "dout.sum(axis=0)", "dout[0]", "db_not_summed"),
    ("dense", "x.T @ dout,", "x.T @ dout / len(x),", "dw_mean"),
    ("dense", "return x @ w + b", "return x @ w", "no_bias"),
    ("batchnorm", "dx = gamma * inv * (dout - dout.mean(0) - xhat * (dout * xhat).mean(0))", "dx = dout * gamma * inv",
     "no_mean_terms"),
    ("batchnorm", "- xhat * (dout * xhat).mean(0))", ")", "no_xhat_term"),
    ("batchnorm", "np.sqrt(x.var(0) + eps) * gamma", "np.sqrt(x.var(0, ddof=1) + eps) * gamma", "unbiased_var"),
    ("sobel", "return V, V.T", "return V, V", "not_transposed"),
    ("sobel", "% 2).astype(float)", "% 2 == 0).astype(float)", "inverted"),
    ("sobel", "return _conv(image, V), _conv(image, V.T)", "return _conv(image, -V), _conv(image, -V.T)", "sign_flipped"),
    ("equivariance", 'mode="wrap"', 'mode="constant"', "zero_padding"),
    ("equivariance", "np.roll(image, k, axis=1)", "np.roll(image, -k, axis=1)", "shift_left"),
    ("conv_matrix", "= kernel[u, v]", "= kernel[2 - u, 2 - v]", "flipped"),
    ("conv_matrix", "return M", "return M.T", "transposed"),
    ("conv_matrix", "= kernel[u, v]", "= kernel[v, u]", "kernel_transposed"),
    ("convolve2d_stride_padding", "+ KW] * kernel)", "+ KW] * kernel[::-1, ::-1])", "flipped"),
    ("equivariance", "np.roll(image, k, axis=1)",
     "np.concatenate([np.zeros((image.shape[0], k)), image[:, :image.shape[1] - k]], axis=1)", "zero_fill"),
    ("conv2d_backward", 'np.einsum("nfhw,nchw->fc", dout, xp[sl])', 'np.einsum("fhw,chw->fc", dout[0], xp[sl][0])',
     "dw_one_sample"),
    ("conv2d_forward", "patch, w[:, :, u, v])", "patch[:, :1], w[:, :1, u, v])", "first_channel_only"),
    ("relu", "return dout * (x > 0)", "return dout * (dout > 0)", "mask_from_dout"),
    ("avgpool", "dx[:, :, i*stride:i*stride+pool_size, j*stride:j*stride+pool_size] +=",
     "dx[:, :, i*pool_size:i*pool_size+pool_size, j*pool_size:j*pool_size+pool_size] +=", "stride_ignored"),
    ("batchnorm", "np.sqrt(x.var(0) + eps) * gamma", "(x.std(0) + eps) * gamma", "eps_outside"),
    ("softmax_ce", "loss = -float(np.mean(", "loss = -float(np.sum(", "loss_summed"),
    ("maxpool", "def maxpool_forward(x, pool_size=2, stride=2):\n",
     "def maxpool_forward(x, pool_size=2, stride=2):\n    stride = pool_size\n", "forward_stride_ignored"),
    ("dense", "dout.sum(axis=0)", "dout.mean(axis=0)", "db_mean"),
    ("challenge", "dout.sum(axis=(0, 2, 3))", "dout[0].sum(axis=(1, 2))", None),
    ("challenge", "return dout * (x > 0)", "return (x > 0) * 1.0", None),
]
