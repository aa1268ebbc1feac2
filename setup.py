"""Build hook for the one native extension; everything else is in pyproject.toml."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "spine.shm._seqlock",
            sources=["native/_seqlock.c"],
            include_dirs=["native"],
            depends=["native/spine_shm.h"],
            extra_compile_args=["-std=c11", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
        )
    ],
)
