"""2-d convolution and max pooling on NCHW arrays, vectorised with im2col / col2im.

im2col lays every receptive field of the padded input out as one column (a strided view of
the windows, then one copy); the convolution is then a single matrix product. The columns are
ordered channel-major, (C*kh*kw, N*Ho*Wo), so that the copy moves whole output rows (Wo
neighbouring pixels) at a time. col2im adds the column gradients back, with a loop over the
kh*kw kernel offsets only (never over pixels).
"""
import numpy as np

from .base import Layer, check_choice
from ..init import get_initialiser


def _windows(xp, x, kh, kw, stride):
    """Strided view (N, C, Ho, Wo, kh, kw) of the kh x kw windows of x (N, C, H, W)."""
    n, c, h, w = x.shape
    ho, wo = out_size(h, w, kh, kw, stride)
    sn, sc, sh, sw = x.strides
    return xp.lib.stride_tricks.as_strided(
        x, shape=(n, c, ho, wo, kh, kw),
        strides=(sn, sc, sh * stride, sw * stride, sh, sw))


def out_size(h, w, kh, kw, stride):
    """(Ho, Wo): how many kh x kw windows fit in h x w at this stride."""
    return (h - kh) // stride + 1, (w - kw) // stride + 1


def im2col(xp, x, kh, kw, stride, out=None):
    """(N, C, H, W) -> columns (C*kh*kw, N*Ho*Wo): column (n, i, j) is window (i, j) of x[n].

    Written into ``out`` where given (a layer reuses one buffer: a fresh array this size costs
    page faults every step)."""
    win = _windows(xp, x, kh, kw, stride)                           # (N, C, Ho, Wo, kh, kw)
    cols = win.transpose(1, 4, 5, 0, 2, 3)                          # (C, kh, kw, N, Ho, Wo)
    if out is None:
        out = xp.empty((cols.shape[0] * kh * kw, cols[0, 0, 0].size), dtype=x.dtype)
    out.reshape(cols.shape)[...] = cols
    return out


def col2im(xp, gcol, x_shape, kh, kw, stride, out=None):
    """Adjoint of im2col: (C*kh*kw, N*Ho*Wo) -> (N, C, H, W), overlaps summed (into ``out``,
    a (C, N, H, W) buffer, where given)."""
    n, c, h, w = x_shape
    ho, wo = out_size(h, w, kh, kw, stride)
    gcol = gcol.reshape(c, kh, kw, n, ho, wo)
    gx = xp.empty((c, n, h, w), dtype=gcol.dtype) if out is None else out   # channel-major
    gx.fill(0)
    for i in range(kh):
        for j in range(kw):
            gx[:, :, i:i + stride * ho:stride, j:j + stride * wo:stride] += gcol[:, i, j]
    return gx.transpose(1, 0, 2, 3)                                 # (N, C, H, W), a view


class Conv2D(Layer):
    """y[n, o] = sum_c W[o, c] * x_pad[n, c] + b[o]  (cross-correlation, as in PyTorch).

    .. math:: Y = W_m \\mathrm{col}(x) + b,\\quad g_{W_m} = g_Y \\mathrm{col}(x)^T,\\quad
              g_x = \\mathrm{col2im}(W_m^T g_Y)

    Shapes: x (N, C, H, W), W (O, C, kh, kw), b (O,), y (N, O, Ho, Wo) with
    Ho = (H + 2 pad - kh) // stride + 1. ``padding`` is an int or 'same' (odd kernels, stride 1).
    """

    kind = "conv"

    def __init__(self, in_channels, out_channels, kernel_size=3, stride=1, padding=0,
                 init="glorot"):
        kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
        if min(in_channels, out_channels, kh, kw, stride) < 1:
            raise ValueError(f"Conv2D: channels, kernel size and stride must be positive, got "
                             f"{in_channels}, {out_channels}, {(kh, kw)}, {stride}")
        if isinstance(padding, str):
            check_choice("Conv2D", "padding", padding, {"same", "valid"})
            if padding == "same" and (stride != 1 or kh % 2 == 0 or kw % 2 == 0):
                raise ValueError("Conv2D: padding='same' needs stride 1 and an odd kernel")
            padding = kh // 2 if padding == "same" else 0
        if padding < 0:
            raise ValueError(f"Conv2D: padding must be >= 0, got {padding}")
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kh, self.kw, self.stride, self.pad = kh, kw, int(stride), int(padding)
        self.init = get_initialiser(init, "Conv2D")

    def param_specs(self):
        return [("W", (self.out_channels, self.in_channels, self.kh, self.kw), self.init),
                ("b", (self.out_channels,), "zeros")]

    def forward(self, x, train=True):
        self.check_input(x, 4, {1: self.in_channels})
        xp = self.xp_of(x)
        p = self.pad
        if x.shape[2] + 2 * p < self.kh or x.shape[3] + 2 * p < self.kw:
            raise ValueError(f"{self}: input {tuple(x.shape)} is smaller than the kernel")
        xpad = xp.pad(x, ((0, 0), (0, 0), (p, p), (p, p))) if p else x
        n, c, h, w = self.xpad_shape = xpad.shape
        ho, wo = out_size(h, w, self.kh, self.kw, self.stride)
        o, rows = self.out_channels, c * self.kh * self.kw
        self.col = im2col(xp, xpad, self.kh, self.kw, self.stride,
                          out=self.buffer("col", (rows, n * ho * wo), x))    # (C*kh*kw, N*Ho*Wo)
        y = xp.matmul(self.W.reshape(o, rows), self.col,
                      out=self.buffer("y", (o, n * ho * wo), x))              # (O, N*Ho*Wo)
        y += self.b[:, None]
        return y.reshape(o, n, ho, wo).transpose(1, 0, 2, 3)                 # (N, O, Ho, Wo)

    def backward(self, gy):
        xp = self.xp_of(gy)
        n, o, ho, wo = gy.shape
        gy2 = self.buffer("gy2", (o, n * ho * wo), gy)                        # (O, N*Ho*Wo)
        gy2.reshape(o, n, ho, wo)[...] = gy.transpose(1, 0, 2, 3)
        xp.matmul(gy2, self.col.T, out=self.gW.reshape(o, -1))               # g_Wm = g_Y col(x)^T
        gy2.sum(axis=1, out=self.gb)
        if not self.needs_gx:
            return None
        gcol = xp.matmul(self.W.reshape(o, -1).T, gy2,
                         out=self.buffer("gcol", self.col.shape, gy))         # (C*kh*kw, N*Ho*Wo)
        n, c, h, w = self.xpad_shape
        gx = col2im(xp, gcol, self.xpad_shape, self.kh, self.kw, self.stride,
                    out=self.buffer("gx", (c, n, h, w), gy))                  # (N, C, H, W)
        p = self.pad
        return gx[:, :, p:h - p, p:w - p] if p else gx

    def describe(self):
        return (f"{self.in_channels} -> {self.out_channels}, kernel {self.kh}x{self.kw}, "
                f"stride {self.stride}, pad {self.pad}")


class MaxPool2D(Layer):
    """y[n, c, i, j] = max of the k x k window; the gradient goes to the arg-max of each window.

    Shapes: x (N, C, H, W) -> y (N, C, Ho, Wo), Ho = (H - k) // stride + 1 (floor, as PyTorch).
    """

    kind = "maxpool"

    def __init__(self, kernel_size=2, stride=None):
        if kernel_size < 1 or (stride is not None and stride < 1):
            raise ValueError(f"MaxPool2D: kernel_size and stride must be positive, got "
                             f"{kernel_size}, {stride}")
        self.k = int(kernel_size)
        self.stride = int(stride or kernel_size)

    def forward(self, x, train=True):
        self.check_input(x, 4)
        if x.shape[2] < self.k or x.shape[3] < self.k:
            raise ValueError(f"{self}: input {tuple(x.shape)} is smaller than the window")
        xp = self.xp_of(x)
        win = _windows(xp, x, self.k, self.k, self.stride)                    # (N, C, Ho, Wo, k, k)
        y = win[..., 0, 0].copy()                                              # (N, C, Ho, Wo)
        offset = np.min_scalar_type(self.k ** 2).type                          # uint8 for k <= 15
        self.argmax = xp.zeros(y.shape, dtype=offset)                           # offset i*k + j
        for idx in range(1, self.k * self.k):      # one pass per offset, not per window
            i, j = divmod(idx, self.k)
            xp.copyto(self.argmax, offset(idx), where=win[..., i, j] > y)  # strict: first max wins
            xp.maximum(y, win[..., i, j], out=y)
        self.x_shape = x.shape
        return y

    def backward(self, gy):
        xp = self.xp_of(gy)
        gx = self.buffer("gx", self.x_shape, gy)
        gx.fill(0)                                      # pixels in no window get no gradient
        ho, wo = gy.shape[2:]
        s = self.stride
        for idx in range(self.k * self.k):
            i, j = divmod(idx, self.k)
            hits = gx[:, :, i:i + s * ho:s, j:j + s * wo:s]    # offset (i, j) of every window
            if s >= self.k:                                    # windows do not overlap
                xp.multiply(gy, self.argmax == idx, out=hits)
            else:
                hits += gy * (self.argmax == idx)
        return gx

    def describe(self):
        return f"{self.k}x{self.k}, stride {self.stride}"
