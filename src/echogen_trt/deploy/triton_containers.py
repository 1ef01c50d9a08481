"""Which NVIDIA Triton container ships which TensorRT: a TensorRT plan loads only in the same
TensorRT version that built it, so an engine picks its container by its provenance.

The table is NVIDIA's own, from the Triton server repository's
docs/introduction/compatibility.md (read at commit 0f963c9, 2026): the
`nvcr.io/nvidia/tritonserver:<release>-trtllm-python-py3` containers and the TensorRT each
ships. NVIDIA publishes the TensorRT of the plain `<release>-py3` containers only in the
Deep Learning Frameworks Support Matrix, which is not restated here.
"""

from __future__ import annotations

# TensorRT major.minor -> Triton releases whose trtllm-python-py3 container ships it.
TRTLLM_CONTAINER_TENSORRT: dict[str, tuple[str, ...]] = {
    "10.14": ("26.03", "26.04", "26.05", "26.06", "26.07"),
    "10.13": ("25.11", "25.12", "26.01", "26.02"),
    "10.11": ("25.08", "25.09", "25.10"),
    "10.10": ("25.06", "25.07"),
    "10.9": ("25.03", "25.04", "25.05"),
    "10.8": ("25.01", "25.02"),
    "10.7": ("24.12",),
    "10.6": ("24.11",),
    "10.4": ("24.09", "24.10"),
    "10.3": ("24.08",),
    "10.1": ("24.07",),
    "10.0": ("24.05", "24.06"),
}
SUPPORT_MATRIX = "https://docs.nvidia.com/deeplearning/frameworks/support-matrix/index.html"


def container_note(tensorrt_version: str) -> str:
    """One line naming the Triton containers whose TensorRT matches an engine's."""
    minor = ".".join(tensorrt_version.split(".")[:2])
    releases = TRTLLM_CONTAINER_TENSORRT.get(minor)
    if not releases:
        return (
            f"engine built with TensorRT {tensorrt_version}: no Triton container in NVIDIA's "
            f"table ships TensorRT {minor}; pick the release whose TensorRT matches in "
            f"{SUPPORT_MATRIX}, or rebuild the engine inside the container you run."
        )
    tags = ", ".join(f"nvcr.io/nvidia/tritonserver:{r}-trtllm-python-py3" for r in releases)
    return (
        f"engine built with TensorRT {tensorrt_version}: Triton containers with TensorRT "
        f"{minor}: {tags} (the -py3 tag of a release: check its TensorRT in {SUPPORT_MATRIX}); "
        "a plan loads only under the TensorRT version that built it."
    )
