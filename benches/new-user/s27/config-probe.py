# Round 16 (session 27): config.json variants of the mkhf.py folder (benches/new-user/s20),
# each through `moa model info`; run in a folder holding my16/ (mkhf.py my16 f16 320 tied,
# with moa model random's tokenizer.json). M names the moa binary.
import json, subprocess, sys, shutil, os
M = "/tmp/s27-fresh-bin/main/moa"
base = json.load(open("my16/config.json"))
cases = [
 ("heads0", {"num_attention_heads": 0}), ("kv0", {"num_key_value_heads": 0}),
 ("hidden0", {"hidden_size": 0}), ("layers0", {"num_hidden_layers": 0}),
 ("theta0", {"rope_theta": 0}), ("theta-1", {"rope_theta": -1}), ("thetastr", {"rope_theta": "10000"}),
 ("eps0", {"rms_norm_eps": 0}), ("eps-1", {"rms_norm_eps": -1}),
 ("ctx0", {"max_position_embeddings": 0}), ("ctx-5", {"max_position_embeddings": -5}), ("ctxbig", {"max_position_embeddings": 10**12}),
 ("ctxnone", {"max_position_embeddings": None}),
 ("vocab0", {"vocab_size": 0}), ("hd0", {"head_dim": 0}), ("hdnull", {"head_dim": None}), ("ffn0", {"intermediate_size": 0}),
 ("eoslist", {"eos_token_id": [1, 2]}), ("eosempty", {"eos_token_id": []}),
 ("mistral-sw", {"model_type": "mistral", "architectures": ["MistralForCausalLM"], "sliding_window": 1024}),
 ("mistral-swnull", {"model_type": "mistral", "architectures": ["MistralForCausalLM"], "sliding_window": None}),
 ("qwen2", {"model_type": "qwen2", "architectures": ["Qwen2ForCausalLM"], "use_sliding_window": False}),
 ("qwen2-sw", {"model_type": "qwen2", "architectures": ["Qwen2ForCausalLM"], "use_sliding_window": True, "sliding_window": 512, "max_window_layers": 2}),
 ("gemma", {"model_type": "gemma", "architectures": ["GemmaForCausalLM"]}),
 ("phi3", {"model_type": "phi3", "architectures": ["Phi3ForCausalLM"]}),
 ("kvnull", {"num_key_value_heads": None}),
 ("tiestr", {"tie_word_embeddings": "true"}),
 ("tp2", {"pretraining_tp": 2}),
 ("longrope", {"rope_scaling": {"rope_type": "longrope", "short_factor": [1.0]*16, "long_factor": [2.0]*16}}),
 ("noarch", {"architectures": None}),
 ("qknorm", {"model_type": "qwen3", "architectures": ["Qwen3ForCausalLM"]}),
 ("olmo", {"model_type": "olmo2", "architectures": ["Olmo2ForCausalLM"]}),
 ("softcap", {"attn_logit_softcapping": 50.0}),
 ("actfn", {"hidden_act": "swish"}),
 ("mlpbias", {"mlp_bias": True}),
 ("eps1e-6str", {"rms_norm_eps": "1e-6"}),
 ("dtype-f32", {"torch_dtype": "float32"}),
 ("dtype-weird", {"torch_dtype": "int8"}),
 ("quant", {"quantization_config": {"quant_method": "awq", "bits": 4}}),
]
for name, edit in cases:
    d = f"cfg/{name}"
    shutil.rmtree(d, ignore_errors=True); os.makedirs(d)
    for f in ("model.safetensors", "tokenizer.json"):
        os.symlink(os.path.abspath(f"my16/{f}"), f"{d}/{f}")
    c = dict(base); c.update(edit)
    json.dump(c, open(f"{d}/config.json", "w"), indent=1)
    r = subprocess.run([M, "model", "info", d], capture_output=True, text=True)
    out = (r.stdout + r.stderr).strip().splitlines()
    short = [l for l in out if l.split()[0] in ("layers","q_heads","kv_heads","head_dim","rope_theta","context_length","eos","vocab")] if r.returncode == 0 else out
    print(f"== {name} rc={r.returncode}: " + " | ".join(short)[:600])
