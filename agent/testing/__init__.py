"""Fixtures for tests, benchmarks and the offline demo, kept apart from the real tools.

:mod:`.synth` synthetic videos with known content (barcoded frames, cuts, scripted actions),
:mod:`.tiny_models` tiny random-weight perception models built from transformers configs,
:mod:`.tiny_llm` a tiny random-weight Llama with a tokenizer trained in memory,
:mod:`.vllm_server` a launcher for a real ``vllm serve`` process on that model.
Nothing here downloads anything. Random weights give meaningless outputs: use them to check
mechanics (types, shapes, caching, valid structured output), never quality.
"""
