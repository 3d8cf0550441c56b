"""Image quality metrics shared by training, export and evaluation."""

from __future__ import annotations

import numpy as np

from mobile_enhance.compat import tf
from mobile_enhance.losses.functions import ms_ssim_value


def image_metrics(enhanced: np.ndarray, target: np.ndarray) -> dict:
    """Mean PSNR (dB), SSIM and MS-SSIM over ``(N, H, W, 3)`` images in [0, 1].

    ``enhanced`` is clipped to [0, 1] first, as an 8-bit output would be.
    """
    a = tf.clip_by_value(tf.convert_to_tensor(enhanced, tf.float32), 0.0, 1.0)
    b = tf.convert_to_tensor(target, tf.float32)
    return {
        "psnr": float(tf.reduce_mean(tf.image.psnr(a, b, 1.0))),
        "ssim": float(tf.reduce_mean(tf.image.ssim(a, b, 1.0))),
        "ms_ssim": float(tf.reduce_mean(ms_ssim_value(a, b))),
    }
