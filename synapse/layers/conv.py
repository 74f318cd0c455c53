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
    ho, wo = (h - kh) // stride + 1, (w - kw) // stride + 1
    sn, sc, sh, sw = x.strides
    return xp.lib.stride_tricks.as_strided(
        x, shape=(n, c, ho, wo, kh, kw),
        strides=(sn, sc, sh * stride, sw * stride, sh, sw))


def im2col(xp, x, kh, kw, stride):
    """(N, C, H, W) -> columns (C*kh*kw, N*Ho*Wo): column (n, i, j) is window (i, j) of x[n]."""
    win = _windows(xp, x, kh, kw, stride)                           # (N, C, Ho, Wo, kh, kw)
    n, c, ho, wo = win.shape[:4]
    return win.transpose(1, 4, 5, 0, 2, 3).reshape(c * kh * kw, n * ho * wo), (ho, wo)


def col2im(xp, gcol, x_shape, kh, kw, stride, ho, wo):
    """Adjoint of im2col: (C*kh*kw, N*Ho*Wo) -> (N, C, H, W), overlaps summed."""
    n, c, h, w = x_shape
    gcol = gcol.reshape(c, kh, kw, n, ho, wo)
    gx = xp.zeros((c, n, h, w), dtype=gcol.dtype)                   # channel-major, as gcol
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
        self.xpad_shape = xpad.shape
        self.col, (ho, wo) = im2col(xp, xpad, self.kh, self.kw, self.stride)  # (C*kh*kw, N*Ho*Wo)
        self.out_hw = ho, wo
        y = self.W.reshape(self.out_channels, -1) @ self.col                  # (O, N*Ho*Wo)
        y += self.b[:, None]
        return y.reshape(self.out_channels, x.shape[0], ho, wo).transpose(1, 0, 2, 3)

    def backward(self, gy):
        xp = self.xp_of(gy)
        gy2 = gy.transpose(1, 0, 2, 3).reshape(self.out_channels, -1)          # (O, N*Ho*Wo)
        self.gW += (gy2 @ self.col.T).reshape(self.W.shape)
        self.gb += gy2.sum(axis=1)
        if not self.needs_gx:
            return None
        gcol = self.W.reshape(self.out_channels, -1).T @ gy2                   # (C*kh*kw, N*Ho*Wo)
        gx = col2im(xp, gcol, self.xpad_shape, self.kh, self.kw, self.stride, *self.out_hw)
        p = self.pad
        return gx[:, :, p:gx.shape[2] - p, p:gx.shape[3] - p] if p else gx

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
        self.argmax = xp.zeros(y.shape, dtype=np.min_scalar_type(self.k ** 2))   # offset i*k + j
        for idx in range(1, self.k * self.k):      # one pass per offset, not per window
            i, j = divmod(idx, self.k)
            xp.copyto(self.argmax, idx, where=win[..., i, j] > y)  # strict: the first max wins
            xp.maximum(y, win[..., i, j], out=y)
        self.x_shape = x.shape
        return y

    def backward(self, gy):
        xp = self.xp_of(gy)
        gx = xp.zeros(self.x_shape, dtype=gy.dtype)
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
