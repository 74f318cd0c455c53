"""2-d convolution and max pooling on NCHW arrays, vectorised with im2col / col2im.

im2col views every receptive field of the padded input as one row (a strided view, one
copy); the convolution is then a single matrix product. col2im adds the column gradients
back, with a loop over the kh*kw kernel offsets only (never over pixels).
"""
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
    """(N, C, H, W) -> columns (N*Ho*Wo, C*kh*kw)."""
    win = _windows(xp, xp.ascontiguousarray(x), kh, kw, stride)   # (N, C, Ho, Wo, kh, kw)
    n, c, ho, wo = win.shape[:4]
    return win.transpose(0, 2, 3, 1, 4, 5).reshape(n * ho * wo, c * kh * kw), (ho, wo)


def col2im(xp, gcol, x_shape, kh, kw, stride, ho, wo):
    """Adjoint of im2col: (N*Ho*Wo, C*kh*kw) -> (N, C, H, W), overlaps summed."""
    n, c, h, w = x_shape
    gcol = gcol.reshape(n, ho, wo, c, kh, kw)
    gx = xp.zeros(x_shape, dtype=gcol.dtype)
    for i in range(kh):
        for j in range(kw):
            gx[:, :, i:i + stride * ho:stride, j:j + stride * wo:stride] += \
                gcol[:, :, :, :, i, j].transpose(0, 3, 1, 2)
    return gx


class Conv2D(Layer):
    """y[n, o] = sum_c W[o, c] * x_pad[n, c] + b[o]  (cross-correlation, as in PyTorch).

    .. math:: Y = \\mathrm{col}(x) W_m^T + b,\\quad g_{W_m} = g_Y^T \\mathrm{col}(x),\\quad
              g_x = \\mathrm{col2im}(g_Y W_m)

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
        self.col, (ho, wo) = im2col(xp, xpad, self.kh, self.kw, self.stride)  # (N*Ho*Wo, C*kh*kw)
        self.out_hw = ho, wo
        y = self.col @ self.W.reshape(self.out_channels, -1).T + self.b       # (N*Ho*Wo, O)
        return y.reshape(x.shape[0], ho, wo, self.out_channels).transpose(0, 3, 1, 2)

    def backward(self, gy):
        xp = self.xp_of(gy)
        gy2 = gy.transpose(0, 2, 3, 1).reshape(-1, self.out_channels)          # (N*Ho*Wo, O)
        self.gW += (gy2.T @ self.col).reshape(self.W.shape)
        self.gb += gy2.sum(axis=0)
        if not self.needs_gx:
            return None
        gcol = gy2 @ self.W.reshape(self.out_channels, -1)                     # (N*Ho*Wo, C*kh*kw)
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
        win = _windows(xp, xp.ascontiguousarray(x), self.k, self.k, self.stride)
        n, c, ho, wo = win.shape[:4]
        flat = win.reshape(n, c, ho, wo, self.k * self.k)                     # copies
        self.argmax = flat.argmax(axis=-1)                                      # (N, C, Ho, Wo)
        self.x_shape = x.shape
        return xp.take_along_axis(flat, self.argmax[..., None], axis=-1)[..., 0]

    def backward(self, gy):
        xp = self.xp_of(gy)
        gx = xp.zeros(self.x_shape, dtype=gy.dtype)
        ho, wo = gy.shape[2:]
        s = self.stride
        for idx in range(self.k * self.k):
            i, j = divmod(idx, self.k)
            gx[:, :, i:i + s * ho:s, j:j + s * wo:s] += gy * (self.argmax == idx)
        return gx

    def describe(self):
        return f"{self.k}x{self.k}, stride {self.stride}"
