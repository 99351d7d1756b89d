"""The endpoint the tests create, written once (imported by test modules and by the tests' DAG files)."""

from __future__ import annotations

#: huggingface_hub's create arguments, which are also our EndpointSpec's and the create operator's:
#: the reference's minimal CPU endpoint.
CPU_ENDPOINT = {
    "repository": "openai-community/gpt2",
    "framework": "pytorch",
    "accelerator": "cpu",
    "instance_size": "x2",
    "instance_type": "intel-spr",
    "region": "us-east-1",
    "vendor": "aws",
}
#: the same model on one NVIDIA L4 (the emulator prices it at $0.80 per hour)
GPU_ENDPOINT = {**CPU_ENDPOINT, "accelerator": "gpu", "instance_size": "x1", "instance_type": "nvidia-l4"}
