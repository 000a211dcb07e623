"""Fixtures for tests, benchmarks and the offline demo, kept apart from the real tools.

:mod:`.synth` synthetic videos with known content (barcoded frames, cuts, scripted actions),
:mod:`.tiny_models` tiny random-weight perception models built from transformers configs,
:mod:`.tiny_llm` a tiny random-weight Llama with a tokenizer trained in memory,
:mod:`.vllm_server` a launcher for a real ``vllm serve`` process on that model,
:mod:`.world` a learnable synthetic world (scripted actions in a Markov grammar, with videos and
annotation files in the official formats) where trained parts can be shown to learn.
Nothing here downloads anything. Random weights give meaningless outputs: use them to check
mechanics (types, shapes, caching, valid structured output), never quality.
"""
