"""Enhancing photos of any size with a trained or exported model.

:mod:`mobile_enhance.enhance.tiling` splits an image into overlapping windows whose sizes
the model's strides accept, runs the model on one window at a time and blends the results,
so a 12 MP photo runs in bounded memory. The Android demo app ports the same integer
maths to Kotlin (``android_demo/app/src/main/java/.../Tiling.kt``).
"""

from mobile_enhance.enhance.tiling import Tile, TilingError, blend_weights, enhance_tiled, padding_needed, plan_tiles

__all__ = ["Tile", "TilingError", "blend_weights", "enhance_tiled", "padding_needed", "plan_tiles"]
