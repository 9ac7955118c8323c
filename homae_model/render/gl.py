"""Offscreen OpenGL renderer (moderngl, EGL): colour, linear depth and instance ids in one pass.

Meshes are given in the camera optical frame (x right, y down, z forward, metres) and the
pinhole K goes straight into the vertex shader, so pixel `(u, v)` of the outputs is the pixel
whose centre is at `(u, v)` in OpenCV's convention (centres at integer coordinates). One draw
writes an RGB image (Lambert + ambient + a weak Blinn-Phong highlight, per-mesh or per-vertex
colour, two-sided), the camera-frame z of the nearest surface (metres, 0 on the background) and
the instance id (0 background, 1 hand, 2 object, 3+ distractors). The background is a textured
full-screen quad (an (h, w, 3) uint8 image, stretched) or a plain colour.

The context is a standalone EGL context (`moderngl.create_standalone_context(backend="egl")`),
which runs headless on Mesa llvmpipe; no display is needed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from homae_model.objects.procedural import smooth_normals

INSTANCE_BACKGROUND = 0
INSTANCE_HAND = 1
INSTANCE_OBJECT = 2
INSTANCE_DISTRACTOR = 3
"""Instance ids of the id buffer: 0 background, 1 hand, 2 object, 3+ distractors."""


@dataclass
class RenderMesh:
    """One mesh to draw, already in the camera optical frame (x right, y down, z forward).

    Attributes:
        vertices: (V, 3) camera-frame positions, metres.
        faces: (F, 3) vertex indices.
        color: (3,) RGB in [0, 1], used when `vertex_colors` is None.
        instance_id: value written to the id buffer (1 hand, 2 object, 3+ distractors).
        normals: optional (V, 3) camera-frame unit normals; default: area-weighted smooth
            normals of the faces (`homae_model.objects.procedural.split_creases` keeps creases).
        vertex_colors: optional (V, 3) RGB in [0, 1].
        specular: strength of the Blinn-Phong highlight (0 = matte).
    """

    vertices: np.ndarray
    faces: np.ndarray
    color: np.ndarray | tuple[float, float, float]
    instance_id: int
    normals: np.ndarray | None = None
    vertex_colors: np.ndarray | None = None
    specular: float = 0.15


@dataclass
class Light:
    """A directional light in the camera frame.

    Attributes:
        direction: (3,) unit vector from the surface towards the light, camera frame.
        ambient: ambient term (fraction of the base colour).
        diffuse: Lambert term strength.
        color: (3,) light RGB multiplier.
    """

    direction: np.ndarray = field(default_factory=lambda: np.array([0.3, -0.5, -0.8]))
    ambient: float = 0.35
    diffuse: float = 0.75
    color: np.ndarray = field(default_factory=lambda: np.ones(3))


@dataclass
class RenderOutput:
    """Result of one render.

    Attributes:
        rgb: (H, W, 3) uint8 image.
        depth: (H, W) float32 camera-frame z of the visible surface, metres; 0 on background.
        ids: (H, W) int32 instance ids (0 background).
    """

    rgb: np.ndarray | None
    depth: np.ndarray
    ids: np.ndarray


_MESH_VS = """
#version 330
uniform vec4 intr;      // fx, fy, cx + 0.5, cy + 0.5
uniform float skew;
uniform vec2 size;      // W, H
uniform vec2 depth_ab;  // clip z = a * z + b
in vec3 in_pos;
in vec3 in_normal;
in vec3 in_color;
in float in_id;
in float in_spec;
out vec3 v_pos;
out vec3 v_normal;
out vec3 v_color;
flat out float v_id;
flat out float v_spec;
void main() {
    float z = in_pos.z;
    float u = intr.x * in_pos.x + skew * in_pos.y + intr.z * z;
    float v = intr.y * in_pos.y + intr.w * z;
    // Image row v maps to GL row v, so the read-back buffer is already top-row first.
    gl_Position = vec4(2.0 * u / size.x - z, 2.0 * v / size.y - z, depth_ab.x * z + depth_ab.y, z);
    v_pos = in_pos;
    v_normal = in_normal;
    v_color = in_color;
    v_id = in_id;
    v_spec = in_spec;
}
"""

_MESH_FS = """
#version 330
uniform vec3 light_dir;
uniform vec3 light_color;
uniform float ambient;
uniform float diffuse;
in vec3 v_pos;
in vec3 v_normal;
in vec3 v_color;
flat in float v_id;
flat in float v_spec;
layout(location = 0) out vec4 out_color;
layout(location = 1) out vec2 out_aux;
void main() {
    vec3 n = normalize(v_normal);
    vec3 view = normalize(-v_pos);
    if (dot(n, view) < 0.0) n = -n;
    float lambert = max(dot(n, light_dir), 0.0);
    vec3 h = normalize(light_dir + view);
    float spec = v_spec * pow(max(dot(n, h), 0.0), 24.0) * step(0.0, dot(n, light_dir));
    vec3 c = v_color * (ambient + diffuse * lambert) * light_color + spec * light_color;
    out_color = vec4(clamp(c, 0.0, 1.0), 1.0);
    out_aux = vec2(v_pos.z, v_id);
}
"""

_BG_VS = """
#version 330
in vec2 in_vert;
out vec2 uv;
void main() {
    uv = 0.5 * (in_vert + 1.0);
    gl_Position = vec4(in_vert, 0.0, 1.0);
}
"""

_BG_FS = """
#version 330
uniform sampler2D tex;
in vec2 uv;
layout(location = 0) out vec4 out_color;
layout(location = 1) out vec2 out_aux;
void main() {
    out_color = vec4(texture(tex, uv).rgb, 1.0);
    out_aux = vec2(0.0, 0.0);
}
"""


def _vertex_data(meshes: Sequence[RenderMesh]) -> tuple[np.ndarray, np.ndarray]:
    """Interleave all meshes into one (N, 11) float32 vertex array and one index array."""
    chunks, indices, offset = [], [], 0
    for mesh in meshes:
        verts = np.asarray(mesh.vertices, dtype=np.float64)
        faces = np.asarray(mesh.faces, dtype=np.int64)
        normals = mesh.normals if mesh.normals is not None else smooth_normals(verts, faces)
        if mesh.vertex_colors is not None:
            colors = np.asarray(mesh.vertex_colors, dtype=np.float64)
        else:
            colors = np.broadcast_to(np.asarray(mesh.color, dtype=np.float64), verts.shape)
        data = np.empty((len(verts), 11), dtype=np.float32)
        data[:, 0:3] = verts
        data[:, 3:6] = normals
        data[:, 6:9] = colors
        data[:, 9] = mesh.instance_id
        data[:, 10] = mesh.specular
        chunks.append(data)
        indices.append(faces + offset)
        offset += len(verts)
    return np.concatenate(chunks), np.concatenate(indices).astype(np.int32)


class GLRenderer:
    """Headless moderngl renderer producing RGB, linear depth and instance ids.

    With `supersample = s > 1` the colour image is rendered at s x the size (K scaled so that
    pixel centres stay aligned: `u_s = s u + (s - 1) / 2`) and box-filtered down (anti-aliased
    edges); the depth/id buffers come from a second pass at the output size, so labels stay
    exact per pixel centre.

    Args:
        width: image width W in pixels.
        height: image height H in pixels.
        near: near clipping distance, metres.
        far: far clipping distance, metres.
        supersample: colour supersampling factor (1 = no anti-aliasing).

    Raises:
        RuntimeError: when no EGL context can be created (message says what to install).
    """

    def __init__(
        self, width: int, height: int, near: float = 0.01, far: float = 10.0, supersample: int = 2
    ) -> None:
        import moderngl

        try:
            self.ctx = moderngl.create_standalone_context(backend="egl")
        except Exception as err:  # pragma: no cover - depends on the machine
            raise RuntimeError(
                "cannot create a headless EGL OpenGL context for rendering; install Mesa EGL "
                f"(apt: libegl1 libegl-mesa0 libgl1-mesa-dri): {err}"
            ) from err
        self._moderngl = moderngl
        self.near, self.far = float(near), float(far)
        self.supersample = max(1, int(supersample))
        self.mesh_prog = self.ctx.program(vertex_shader=_MESH_VS, fragment_shader=_MESH_FS)
        self.bg_prog = self.ctx.program(vertex_shader=_BG_VS, fragment_shader=_BG_FS)
        quad = np.array([-1, -1, 1, -1, -1, 1, 1, 1], dtype=np.float32)
        self._quad = self.ctx.buffer(quad.tobytes())
        self._bg_vao = self.ctx.vertex_array(self.bg_prog, [(self._quad, "2f", "in_vert")])
        self._bg_tex = None
        self._gl_objects: list = []
        self.width = self.height = 0
        self.resize(width, height)

    def resize(self, width: int, height: int) -> None:
        """Change the output size (re-creates the framebuffers when it differs)."""
        if width <= 0 or height <= 0:
            raise ValueError(f"image size must be positive, got width={width}, height={height}")
        if (width, height) == (self.width, self.height):
            return
        for obj in self._gl_objects:
            obj.release()
        self.width, self.height = int(width), int(height)
        size = (self.width, self.height)
        ctx = self.ctx
        color = ctx.renderbuffer(size, components=4)
        aux = ctx.renderbuffer(size, components=2, dtype="f4")
        depth = ctx.depth_renderbuffer(size)
        self.fbo = ctx.framebuffer(color_attachments=[color, aux], depth_attachment=depth)
        self._gl_objects = [self.fbo, color, aux, depth]
        self.ss_fbo = None
        if self.supersample > 1:
            big = (self.width * self.supersample, self.height * self.supersample)
            ss_color = ctx.renderbuffer(big, components=4)
            ss_depth = ctx.depth_renderbuffer(big)
            self.ss_fbo = ctx.framebuffer(color_attachments=[ss_color], depth_attachment=ss_depth)
            self._gl_objects += [self.ss_fbo, ss_color, ss_depth]

    def _draw_background(self, background: np.ndarray | tuple[float, float, float] | None) -> None:
        if background is None:
            background = (0.0, 0.0, 0.0)
        image = np.asarray(background)
        if image.ndim == 1:
            image = np.clip(np.round(image.reshape(1, 1, 3) * 255.0), 0, 255).astype(np.uint8)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(
                f"background must be an (h, w, 3) uint8 image or an RGB colour, got {image.shape}"
            )
        image = np.ascontiguousarray(image)
        h, w = image.shape[:2]
        if self._bg_tex is None or self._bg_tex.size != (w, h):
            if self._bg_tex is not None:
                self._bg_tex.release()
            self._bg_tex = self.ctx.texture((w, h), 3, alignment=1)
            self._bg_tex.filter = (self._moderngl.LINEAR, self._moderngl.LINEAR)
            self._bg_tex.repeat_x = self._bg_tex.repeat_y = False
        self._bg_tex.write(image.tobytes())
        self._bg_tex.use(0)
        self.bg_prog["tex"].value = 0
        self._bg_vao.render(self._moderngl.TRIANGLE_STRIP)

    def _set_uniforms(self, K: np.ndarray, light: Light, scale: int = 1) -> None:
        prog = self.mesh_prog
        shift = (scale - 1) / 2.0 + 0.5
        prog["intr"].value = (
            scale * K[0, 0],
            scale * K[1, 1],
            scale * K[0, 2] + shift,
            scale * K[1, 2] + shift,
        )
        prog["skew"].value = scale * K[0, 1]
        prog["size"].value = (scale * self.width, scale * self.height)
        a = (self.far + self.near) / (self.far - self.near)
        prog["depth_ab"].value = (a, -2.0 * self.far * self.near / (self.far - self.near))
        direction = np.asarray(light.direction, dtype=np.float64)
        prog["light_dir"].value = tuple(direction / np.linalg.norm(direction))
        prog["light_color"].value = tuple(np.asarray(light.color, dtype=np.float64))
        prog["ambient"].value = float(light.ambient)
        prog["diffuse"].value = float(light.diffuse)

    def _pass(self, fbo: Any, vao: Any | None, background: Any) -> None:
        """Clear `fbo`, draw the background (unless `background is False`) and the meshes."""
        mgl = self._moderngl
        fbo.use()
        fbo.clear(0.0, 0.0, 0.0, 0.0, depth=1.0)
        self.ctx.disable(mgl.DEPTH_TEST | mgl.CULL_FACE)
        if background is not False:
            self._draw_background(background)
        if vao is not None:
            self.ctx.enable(mgl.DEPTH_TEST)
            vao.render(mgl.TRIANGLES)

    def render(
        self,
        meshes: Sequence[RenderMesh],
        K: np.ndarray,
        background: np.ndarray | tuple[float, float, float] | None = None,
        light: Light | None = None,
        read_color: bool = True,
    ) -> RenderOutput:
        """Draw the meshes seen through the pinhole camera K.

        Args:
            meshes: camera-frame meshes (all z > near for the parts in view).
            K: (3, 3) intrinsics of the W x H output image.
            background: (h, w, 3) uint8 image stretched over the frame, an RGB colour in
                [0, 1], or None (black).
            light: directional light; default `Light()`.
            read_color: False skips the colour pass/read-back (`rgb` is None): ids/depth only.

        Returns:
            RenderOutput with rgb (H, W, 3) uint8, depth (H, W) float32 m, ids (H, W) int32.
        """
        K = np.asarray(K, dtype=np.float64)
        if K.shape != (3, 3) or not np.all(np.isfinite(K)) or K[0, 0] <= 0 or K[1, 1] <= 0:
            raise ValueError(f"K must be a finite (3, 3) matrix with fx, fy > 0, got {K.tolist()}")
        light = light or Light()
        vao = buffers = None
        if meshes:
            data, index = _vertex_data(meshes)
            buffers = [self.ctx.buffer(data.tobytes()), self.ctx.buffer(index.tobytes())]
            vao = self.ctx.vertex_array(
                self.mesh_prog,
                [
                    (
                        buffers[0],
                        "3f 3f 3f 1f 1f",
                        "in_pos",
                        "in_normal",
                        "in_color",
                        "in_id",
                        "in_spec",
                    )
                ],
                index_buffer=buffers[1],
                index_element_size=4,
            )
        h, w = self.height, self.width
        rgb = None
        if read_color and self.ss_fbo is not None:
            s = self.supersample
            self._set_uniforms(K, light, s)
            self._pass(self.ss_fbo, vao, background)
            raw = self.ss_fbo.read(components=3, alignment=1)
            big = np.frombuffer(raw, np.uint8).reshape(h * s, w * s, 3)
            rgb = cv2.resize(big, (w, h), interpolation=cv2.INTER_AREA)
            self._set_uniforms(K, light)
            self._pass(self.fbo, vao, False)
        else:
            self._set_uniforms(K, light)
            self._pass(self.fbo, vao, background if read_color else False)
            if read_color:
                raw = self.fbo.read(components=3, attachment=0, alignment=1)
                rgb = np.frombuffer(raw, np.uint8).reshape(h, w, 3).copy()
        aux = np.frombuffer(self.fbo.read(components=2, attachment=1, dtype="f4"), np.float32)
        aux = aux.reshape(h, w, 2)
        if vao is not None:
            vao.release()
            for buf in buffers:
                buf.release()
        return RenderOutput(
            rgb=rgb, depth=aux[..., 0].copy(), ids=np.rint(aux[..., 1]).astype(np.int32)
        )

    def release(self) -> None:
        """Free the GL objects and the context."""
        self.ctx.release()


def _value_noise(rng: np.random.Generator, height: int, width: int, octaves: int = 4) -> np.ndarray:
    """Smooth multi-octave noise in [0, 1], (H, W) float32."""
    out = np.zeros((height, width), np.float32)
    total = 0.0
    for o in range(octaves):
        cells = 2 + 3 * 2**o
        grid = rng.random((cells, cells)).astype(np.float32)
        amp = 0.55**o
        out += amp * cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)
        total += amp
    out /= total
    return np.clip((out - out.min()) / max(float(np.ptp(out)), 1e-6), 0.0, 1.0)


def random_background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A procedural background image: gradient, coloured noise, stripes, table/wall or clutter.

    Args:
        rng: random generator (the only source of randomness).
        height: H.
        width: W.

    Returns:
        (H, W, 3) uint8 RGB image.
    """
    kind = rng.integers(5)
    c1, c2, c3 = rng.random((3, 3)) * rng.uniform(0.4, 1.0)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    yy /= max(height - 1, 1)
    xx /= max(width - 1, 1)
    if kind == 0:  # gradient + faint noise
        ang = rng.uniform(0, 2 * np.pi)
        t = np.clip(0.5 + (np.cos(ang) * (xx - 0.5) + np.sin(ang) * (yy - 0.5)), 0, 1)
        t = 0.85 * t + 0.15 * _value_noise(rng, height, width)
        img = c1 * (1 - t[..., None]) + c2 * t[..., None]
    elif kind == 1:  # coloured noise
        t1, t2 = _value_noise(rng, height, width), _value_noise(rng, height, width, 3)
        img = c1 * t1[..., None] + c2 * (1 - t1[..., None]) * t2[..., None] + 0.3 * c3
    elif kind == 2:  # stripes or checks
        ang, freq = rng.uniform(0, np.pi), rng.uniform(3, 14)
        u = np.cos(ang) * xx + np.sin(ang) * yy
        t = 0.5 + 0.5 * np.sign(np.sin(2 * np.pi * freq * u))
        if rng.random() < 0.5:
            v = -np.sin(ang) * xx + np.cos(ang) * yy
            t = np.abs(t - (0.5 + 0.5 * np.sign(np.sin(2 * np.pi * freq * v))))
        t = 0.8 * t + 0.2 * _value_noise(rng, height, width)
        img = c1 * (1 - t[..., None]) + c2 * t[..., None]
    elif kind == 3:  # wall above a (wood-like) table
        horizon = rng.uniform(0.2, 0.7)
        grain = cv2.resize(
            rng.random((8, max(2, width // 4))).astype(np.float32),
            (width, height),
            interpolation=cv2.INTER_LINEAR,
        )
        wall = c1 * (0.8 + 0.2 * _value_noise(rng, height, width, 2))[..., None]
        table = c2 * (0.7 + 0.3 * grain)[..., None]
        img = np.where((yy < horizon)[..., None], wall, table)
    else:  # clutter: shapes over noise
        img = c1 * (0.6 + 0.4 * _value_noise(rng, height, width))[..., None]
        img = np.ascontiguousarray(img, dtype=np.float32)
        for _ in range(int(rng.integers(4, 14))):
            color = tuple(float(c) for c in rng.random(3))
            x0, y0 = int(rng.integers(0, width)), int(rng.integers(0, height))
            sx, sy = (
                int(rng.integers(4, max(5, width // 3))),
                int(rng.integers(4, max(5, height // 3))),
            )
            if rng.random() < 0.5:
                cv2.rectangle(img, (x0, y0), (x0 + sx, y0 + sy), color, -1)
            else:
                cv2.ellipse(
                    img, (x0, y0), (sx // 2, sy // 2), float(rng.uniform(0, 180)), 0, 360, color, -1
                )
    img = np.asarray(img, dtype=np.float32) * rng.uniform(0.6, 1.1)
    return np.clip(img * 255.0, 0, 255).astype(np.uint8)
