"""The conversation as data: Thread and its messages, prompt formats and their rendering, sampler
settings and presets. Nothing here loads llama_cpp at import time."""
