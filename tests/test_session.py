"""Starting a session: options from the command line and the config file become a model."""

from __future__ import annotations

import llama_cpp

from ezchat.session import ChatOptions, load_model
from ezchat.settings.config import update_config


def test_flash_attention_follows_offload_unless_chosen(model_path) -> None:
    def loaded(**options) -> bool:
        model = load_model(
            ChatOptions(model=model_path, context_length=256, **options).with_config()
        )
        try:
            enabled = model.llama.context_params.flash_attn_type
            assert enabled == (
                llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED
                if model.flash_attn
                else llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED
            )
            return model.flash_attn
        finally:
            model.unload()

    assert loaded() is False  # on the CPU it decodes no faster and slows long prompts
    # with layers offloaded it is on (a build without a GPU keeps the layers on the CPU)
    assert loaded(n_gpu_layers=-1) is True
    assert loaded(n_gpu_layers=-1, flash_attn=False) is False
    assert loaded(flash_attn=True) is True
    update_config(flash_attn=False)  # the config file's choice counts as a choice
    assert loaded(n_gpu_layers=-1) is False
