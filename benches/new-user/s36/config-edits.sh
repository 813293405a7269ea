#!/usr/bin/env bash
# Round 22: one config.json key edited at a time in the tiny F32 folder (mkhf.py f32):
# `moa model info` and `moa generate` (greedy, 4 tokens) on each. A valid edit loads; any
# other is refused naming config.json, the key and what is allowed.
# usage: MOA=path/to/moa BASE=<moa model random folder> config-edits.sh WORKDIR
set -u
MOA=${MOA:-moa}
cd "$1"
edit() {  # name, python statement on the dict c
    rm -rf "cfg $1"; python3 "$(dirname "$0")/mkhf.py" "cfg $1" f32 > /dev/null
    python3 -c "import json,sys; p=sys.argv[1]; c=json.load(open(p)); $2; json.dump(c, open(p,'w'))" "cfg $1/config.json"
    "$MOA" model info "cfg $1" > info.out 2>&1; ic=$?
    "$MOA" generate --model "cfg $1" --prompt "hello world" --max-new-tokens 4 --raw --print-ids --dense > gen.out 2>&1; gc=$?
    echo "== $1: info exit $ic, generate exit $gc: $(grep -hE 'generated|Cause' info.out gen.out | sort -u | tr '\n' '|')"
}
edit no-max-pos "del c['max_position_embeddings']"
edit no-kv-heads "del c['num_key_value_heads']"
edit kv-heads-3 "c['num_key_value_heads']=3"
edit head-dim-32 "c['head_dim']=32"
edit hidden-not-divisible "c['num_attention_heads']=3"
edit vocab-smaller "c['vocab_size']=200"
edit vocab-larger "c['vocab_size']=300"
edit rope-theta-string "c['rope_theta']='1e4'"
edit rope-theta-0 "c['rope_theta']=0"
edit eps-negative "c['rms_norm_eps']=-1"
edit eos-list "c['eos_token_id']=[2,1]"
edit eos-past-vocab "c['eos_token_id']=999"
edit bos-null "c['bos_token_id']=None"
edit llama3-no-original "c['rope_scaling']={'rope_type':'llama3','factor':8,'low_freq_factor':1,'high_freq_factor':4}"
edit llama3-high-below-low "c['rope_scaling']={'rope_type':'llama3','factor':8,'low_freq_factor':4,'high_freq_factor':1,'original_max_position_embeddings':64}"
edit linear-factor-0 "c['rope_scaling']={'rope_type':'linear','factor':0}"
edit rope-default "c['rope_scaling']={'rope_type':'default'}"
edit rope-null "c['rope_scaling']=None"
edit dynamic "c['rope_scaling']={'type':'dynamic','factor':2}"
edit layers-1 "c['num_hidden_layers']=1"
edit layers-3 "c['num_hidden_layers']=3"
edit qwen2 "c['model_type']='qwen2'; c['architectures']=['Qwen2ForCausalLM']"
edit mistral-window "c['model_type']='mistral'; c['sliding_window']=128"
edit mistral-null "c['model_type']='mistral'; c['sliding_window']=None"
edit gelu "c['hidden_act']='gelu'"
edit attention-bias "c['attention_bias']=True"
edit quantized "c['quantization_config']={'quant_method':'awq','bits':4}"
edit not-json "c['__x']=1; open(p,'w').write('{'); sys.exit(0)"
