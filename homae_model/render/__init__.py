"""Rendering for synthetic data: the moderngl/EGL renderer and a numpy test oracle.

`gl.GLRenderer` draws the images (moderngl is imported only when one is created);
`reference.rasterize` is the z-buffer oracle the tests compare it with.
"""

from homae_model.render.gl import GLRenderer, Light, RenderMesh, RenderOutput

__all__ = ["GLRenderer", "Light", "RenderMesh", "RenderOutput"]
