//! A model too big for the machine's memory (every weight is held in f32 after loading,
//! whatever the file stores: a 4.9 GB Q4_K_M 8B file needs about 32 GB) is refused before
//! any weight is read, naming the file, the memory it needs and what is available; the
//! kernel's OOM killer used to end the load part way with no message. The folders here
//! declare absurd shapes (about 4 trillion parameters, 16 TB in f32; or small weights and
//! a context of 2^30 tokens) and hold no weights at all, so only a check before the load
//! passes the tests. CPU only, a second each.

use std::process::Command;

/// A config-only model folder (byte-level tokenizer, no weights) of `config`'s fields
/// over the tests' common ones.
fn config_folder(name: &str, config: serde_json::Value) -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut all = serde_json::json!({
        "architectures": ["LlamaForCausalLM"], "model_type": "llama",
        "rope_theta": 500000.0, "rms_norm_eps": 1e-5, "vocab_size": 300,
        "tie_word_embeddings": true, "bos_token_id": 1, "eos_token_id": 2,
    });
    for (k, v) in config.as_object().unwrap() {
        all[k] = v.clone();
    }
    std::fs::write(dir.join("config.json"), all.to_string()).unwrap();
    std::fs::write(
        dir.join("tokenizer.json"),
        moa::model::random::byte_level_tokenizer_json().to_string(),
    )
    .unwrap();
    dir
}

/// On a CPU adapter (lavapipe) the GPU's buffers are host memory: a small model whose
/// request asks a KV cache larger than the machine (2^30 tokens of 2 KiB) is refused
/// before the load, naming the cache, its rows and N (session 19: only the weights were
/// counted, and the run went on to the load). Skipped on a GPU with memory of its own.
#[test]
fn a_kv_cache_bigger_than_memory_on_a_cpu_adapter_is_refused_before_the_load() {
    if !std::path::Path::new("/proc/meminfo").exists() {
        eprintln!("no /proc/meminfo: the check is Linux's; skipped");
        return;
    }
    match moa::runtime::wgpu::WgpuContext::new() {
        Ok(ctx) if ctx.adapter_info().device_type == wgpu::DeviceType::Cpu => {}
        _ => {
            eprintln!("no CPU adapter: its GPU memory is not host memory; skipped");
            return;
        }
    }
    let n = 1u64 << 30;
    let dir = config_folder(
        "load-memory-long",
        serde_json::json!({
            "hidden_size": 256, "intermediate_size": 512, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 4,
            "max_position_embeddings": n,
        }),
    );
    let mut c = Command::new(env!("CARGO_BIN_EXE_moa"));
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        c.env("XDG_RUNTIME_DIR", std::env::temp_dir());
    }
    let o = c
        .args(["generate", "--dense", "--raw", "--prompt", "hi"])
        .args(["--max-new-tokens", &(n - 8).to_string()])
        .arg("--model")
        .arg(&dir)
        .output()
        .unwrap();
    let t = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(!o.status.success(), "{t}");
    for want in [
        "loading it and running this request needs about".to_string(),
        "on the CPU adapter".to_string(),
        "the KV cache of 1 row at N = ".to_string(),
        "a smaller --max-new-tokens".to_string(),
    ] {
        assert!(
            t.contains(&want),
            "no `{want}` in:
{t}"
        );
    }
}

#[test]
fn a_model_bigger_than_memory_is_refused_before_the_load() {
    if !std::path::Path::new("/proc/meminfo").exists() {
        eprintln!("no /proc/meminfo: the check is Linux's; skipped");
        return;
    }
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("load-memory-huge");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let config = serde_json::json!({
        "architectures": ["LlamaForCausalLM"], "model_type": "llama",
        "hidden_size": 16384, "intermediate_size": 65536, "num_hidden_layers": 1024,
        "num_attention_heads": 128, "num_key_value_heads": 8, "rope_theta": 500000.0,
        "rms_norm_eps": 1e-5, "vocab_size": 300, "tie_word_embeddings": true,
        "max_position_embeddings": 4096, "bos_token_id": 1, "eos_token_id": 2,
    });
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    std::fs::write(
        dir.join("tokenizer.json"),
        moa::model::random::byte_level_tokenizer_json().to_string(),
    )
    .unwrap();
    let mut c = Command::new(env!("CARGO_BIN_EXE_moa"));
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        c.env("XDG_RUNTIME_DIR", std::env::temp_dir());
    }
    let o = c
        .args([
            "generate",
            "--dense",
            "--raw",
            "--prompt",
            "hi",
            "--max-new-tokens",
            "1",
        ])
        .arg("--model")
        .arg(&dir)
        .output()
        .unwrap();
    let t = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(!o.status.success(), "{t}");
    for want in [
        &format!(
            "`{}`: loading it and running this request needs about",
            dir.display()
        ),
        // moa generate streams the weights (session 57): the host holds one tensor of
        // them, and on a CPU adapter the device copy, which is what refuses this one.
        "the weights read one tensor at a time",
        "billion parameters",
        "the GPU's copy of the weights",
        "GB available",
    ] {
        assert!(t.contains(want), "no `{want}` in:\n{t}");
    }
}
