//! A new user's journey, round 26 (benches/RESULTS.md): hand-written plans compiled by
//! `moa-compile` as a CI that snapshot-tests kernel output would; what it found wrong, each
//! pinned here. (Round 26's NVRTC warnings are pinned in `tests/cuda_nvrtc.rs`.) None of
//! these needs the fetched model or a GPU.

mod common;

use common::cli::s;

common::cli::tagged!();

/// A plan of `kv` KV heads (and as many query heads) of head_dim `head_dim`, one layer,
/// every span N, at a context of `ctx` tokens.
fn wide_plan(ctx: u32, kv: u32, head_dim: u32) -> String {
    let ones = vec!["1.0"; kv as usize].join(", ");
    let zeros = vec!["0"; kv as usize].join(", ");
    format!(
        "format_version = 1\n\n[model]\nname = \"wide\"\nlayers = 1\nq_heads = {kv}\nkv_heads = {kv}\nhead_dim = {head_dim}\nmax_context_tokens = {ctx}\n\n[span]\nmax_new_tokens = 1024\n\n[[layers]]\nalpha = [{zeros}]\nbeta = [{ones}]\n"
    )
}

/// A legal plan whose cache row at its maximum context is past what a u32 addresses
/// (2^30 tokens × 4 KV heads = 2^32 slots) compiled with its manifest's segment offsets
/// and `row_slots` wrapped to 0. moa-compile refuses it, naming the field and the figures;
/// just under the limit it compiles with the true offsets.
#[test]
fn a_cache_row_past_u32_is_refused_not_wrapped() {
    let dir = scratch("row-wrap");
    let plan = dir.join("wrap.toml");
    std::fs::write(&plan, wide_plan(1 << 30, 4, 4)).unwrap();
    let out = dir.join("out");
    refused(
        "moa-compile",
        &[s(&plan), "-o", s(&out)],
        &[
            "at model.max_context_tokens = 1073741824, layer 0's cache row holds 4294967296 slots",
            "× head_dim 4 = 17179869184 elements, past the 4294967295 that the kernels address in u32",
            "give the plan a shorter model.max_context_tokens",
        ],
    );
    assert!(!out.join("manifest.json").exists());
    // 2^28 tokens × 4 heads × head_dim 4 = 2^32 elements is one past; 2^27 tokens fit.
    std::fs::write(&plan, wide_plan(1 << 27, 4, 4)).unwrap();
    let (code, _, err) = run("moa-compile", &[s(&plan), "-o", s(&out), "-q"]);
    assert_eq!(code, 0, "{err}");
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    let layout = &m["cache_layout"]["at_max_context"][0];
    assert_eq!(layout["row_slots"], 1u64 << 29, "{layout}");
    assert_eq!(layout["segments"][3]["offset"], 3u64 << 27, "{layout}");
}

/// `-o` at a folder whose `cuda/` and `wgsl/` held the user's `l00_blur.wgsl` (a name of
/// moa's pattern, a form moa never writes) and files reached through a linked folder:
/// moa-compile removed them as its own leftovers. Only the exact names moa writes count
/// as moa's, and none through a link unless the manifest lists them; since session 41
/// an unlisted file of such a name counts only beside a stopped compile's marker
/// (`codegen::emit::UNFINISHED_MARKER`), so a user's `cuda/l07.cu` is kept too.
#[test]
fn only_names_moa_writes_are_its_leftovers() {
    let dir = scratch("names");
    let plan = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("plans/fixture-gqa.toml");
    let out = dir.join("proj");
    std::fs::create_dir_all(out.join("wgsl")).unwrap();
    for name in ["l00_blur.wgsl", "l7_decode.wgsl", "l007_prefill.wgsl"] {
        std::fs::write(out.join("wgsl").join(name), "// mine\n").unwrap();
    }
    let err = refused(
        "moa-compile",
        &[s(&plan), "-o", s(&out)],
        &["holds kernel files moa-compile did not write"],
    );
    for name in ["l00_blur.wgsl", "l7_decode.wgsl", "l007_prefill.wgsl"] {
        assert!(err.contains(name), "{name} not named:\n{err}");
        assert!(out.join("wgsl").join(name).exists(), "{name} was removed");
    }
    // A cuda/ folder that is a link to the user's folder: its kernel-named file is refused.
    let elsewhere = dir.join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::fs::write(elsewhere.join("l07.cu"), "// my kernel\n").unwrap();
    let linked = dir.join("linked");
    std::fs::create_dir_all(&linked).unwrap();
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(&elsewhere, linked.join("cuda")).unwrap();
        refused(
            "moa-compile",
            &[s(&plan), "-o", s(&linked)],
            &["holds kernel files moa-compile did not write", "l07.cu"],
        );
        assert!(elsewhere.join("l07.cu").exists());
    }
    // moa's own names in a folder no compile was stopped in (no marker, no manifest) are
    // a user's too: kept and refused (they were removed until session 41).
    let own = dir.join("own");
    std::fs::create_dir_all(own.join("wgsl")).unwrap();
    std::fs::create_dir_all(own.join("cuda")).unwrap();
    std::fs::write(own.join("wgsl/l07_decode_coop.wgsl"), "// moa's\n").unwrap();
    std::fs::write(own.join("cuda/l07.cu"), "// moa's\n").unwrap();
    let err = refused(
        "moa-compile",
        &[s(&plan), "-o", s(&own)],
        &[
            "holds kernel files moa-compile did not write",
            "l07.cu",
            "l07_decode_coop.wgsl",
            ".moa-compile-unfinished",
        ],
    );
    assert!(own.join("cuda/l07.cu").exists(), "{err}");
    // Beside a stopped compile's marker they are its leftovers: another plan's layer 7.
    std::fs::write(own.join(".moa-compile-unfinished"), "").unwrap();
    let (code, _, err) = run("moa-compile", &[s(&plan), "-o", s(&own)]);
    assert_eq!(code, 0, "{err}");
    assert!(!own.join("wgsl/l07_decode_coop.wgsl").exists());
    assert!(!own.join("cuda/l07.cu").exists());
    assert!(!own.join(".moa-compile-unfinished").exists());
    // A finished folder's unlisted file of a moa name is a user's as well.
    std::fs::write(own.join("cuda/l07.cu"), "// mine\n").unwrap();
    refused(
        "moa-compile",
        &[s(&plan), "-o", s(&own)],
        &["holds kernel files moa-compile did not write", "l07.cu"],
    );
    assert!(own.join("cuda/l07.cu").exists());
}

/// A folder whose manifest.json is not moa-compile's (cut short) was refused under
/// "writing the kernels failed; `OUT` now holds no manifest.json", with that manifest
/// still there: the refusal alone is said, and the folder is untouched.
#[test]
fn a_foreign_manifest_is_refused_without_a_false_write_failure() {
    let dir = scratch("cut-manifest");
    let plan = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("plans/fixture-gqa.toml");
    let out = dir.join("out");
    let (code, _, err) = run("moa-compile", &[s(&plan), "-o", s(&out), "-q"]);
    assert_eq!(code, 0, "{err}");
    let m = out.join("manifest.json");
    let text = std::fs::read(&m).unwrap();
    std::fs::write(&m, &text[..100]).unwrap();
    let err = refused(
        "moa-compile",
        &[s(&plan), "-o", s(&out)],
        &[
            "is not moa-compile's manifest",
            "moa-compile will not overwrite it",
        ],
    );
    assert!(!err.contains("writing the kernels failed"), "{err}");
    assert!(!err.contains("now holds no manifest.json"), "{err}");
    assert_eq!(std::fs::read(&m).unwrap(), &text[..100]);
}

/// `--check` (and a compile) over the folder of the same plan with another
/// `model.max_context_tokens` said the folder was "another plan's", printing the same
/// name and shape as this plan's: it is this plan edited, said by field (another name is
/// still another plan: `tests/user_round20.rs`). One file reads "1 file".
#[test]
fn a_changed_model_field_is_named_as_an_edit() {
    let dir = scratch("model-field");
    let text = common::cli::plan_text("fixture-gqa.toml");
    let plan = dir.join("gqa.toml");
    std::fs::write(&plan, &text).unwrap();
    let out = dir.join("out");
    let (code, _, err) = run("moa-compile", &[s(&plan), "-o", s(&out), "-q"]);
    assert_eq!(code, 0, "{err}");
    let edited = text.replace("max_context_tokens = 1024", "max_context_tokens = 2048");
    assert_ne!(edited, text);
    std::fs::write(&plan, edited).unwrap();
    let (code, _, err) = run("moa-compile", &[s(&plan), "-o", s(&out), "--check"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("is of another version of this model's plan (an earlier edit, or another plan of the same model): `fixture-gqa` with other model fields (`max_context_tokens` 1024 -> 2048)")
            && !err.contains("another plan's"),
        "{err}"
    );
    let (code, _, err) = run("moa-compile", &[s(&plan), "-o", s(&out)]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("3 layers -> ") && err.contains("; 1 file written to"),
        "{err}"
    );
}
