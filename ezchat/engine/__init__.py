"""The engine: the only code that imports llama_cpp. Model loading and facts, GGUF headers, the
decoder (KV cache, shift, state), the per-token generation loop, the sampler chain and batched
decoding."""
