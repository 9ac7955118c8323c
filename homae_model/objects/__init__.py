"""Object meshes: procedural YCB stand-ins or YCB model files (`library.ObjectLibrary`)."""

from homae_model.objects.library import ObjectLibrary, ObjectMesh, UnknownObjectError

__all__ = ["ObjectLibrary", "ObjectMesh", "UnknownObjectError"]
