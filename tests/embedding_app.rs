//! An app with its own wgpu executor, written from docs/EMBEDDING.md and moa-compile's
//! output folder alone: it reads `manifest.json` and the WGSL files, binds every
//! parameter by its `arg` in `index` order (uniform words by `fields`), sizes the grid by
//! the page's launch rules, lays the cache out by the page's span formula at its own N
//! and writes it by the manifest's slot rule, builds the decode work list from the
//! page's table, and runs a layer's prefill, decode and merge
//! on the adapter (lavapipe in CI). Outputs match moa's CPU reference: the page is enough
//! to embed the kernels without moa's runtime. moa itself is used only to write the
//! folder and, as the oracle, for the reference. f32 storage (no f16 feature needed);
//! a few seconds. Run twice: over moa-compile's kernels, and over the library's
//! `WgslTuning::rules_table` ones, whose `rules` table the app fills from the manifest.

use std::collections::HashMap;
use std::path::Path;

use moa::codegen::Target;
use moa::lower::CacheLayout;
use moa::runtime::reference::{decode_ref, prefill_ref};
use moa::{Plan, StorageType};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use wgpu::util::DeviceExt;

struct Gpu {
    device: wgpu::Device,
    queue: wgpu::Queue,
}

fn gpu() -> Gpu {
    let instance =
        wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let adapter = pollster::block_on(instance.request_adapter(&Default::default()))
        .expect("a wgpu adapter (lavapipe in CI)");
    let (device, queue) = pollster::block_on(adapter.request_device(&Default::default()))
        .expect("a device with default limits");
    Gpu { device, queue }
}

fn rand_vec(rng: &mut StdRng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

impl Gpu {
    /// Runs `kernel` (a manifest entry) of `file` once: every param bound by its `arg`
    /// from `buffers` (storage) or `words` (uniform fields), the grid `grid`; returns the
    /// f32 contents of the `out` buffer afterwards.
    fn run(
        &self,
        source: &str,
        kernel: &Value,
        buffers: &HashMap<&str, Vec<u8>>,
        words: &HashMap<&str, u32>,
        grid: [u32; 3],
    ) -> Vec<f32> {
        let abi = &kernel["abi"];
        let module = self
            .device
            .create_shader_module(wgpu::ShaderModuleDescriptor {
                label: None,
                source: wgpu::ShaderSource::Wgsl(source.into()),
            });
        let pipeline = self
            .device
            .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: None,
                layout: None,
                module: &module,
                entry_point: Some(kernel["entry_point"].as_str().unwrap()),
                compilation_options: Default::default(),
                cache: None,
            });
        let mut bound = Vec::new();
        let mut out = None;
        for (i, p) in abi["params"].as_array().unwrap().iter().enumerate() {
            assert_eq!(p["index"].as_u64(), Some(i as u64));
            let arg = p["arg"].as_str().unwrap();
            let buffer = if p["access"] == "uniform" {
                let fields: Vec<u32> = p["fields"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|f| *words.get(f.as_str().unwrap()).unwrap_or(&0))
                    .collect();
                self.device
                    .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                        label: Some(arg),
                        contents: bytemuck::cast_slice(&fields),
                        usage: wgpu::BufferUsages::UNIFORM,
                    })
            } else {
                let data = buffers
                    .get(arg)
                    .unwrap_or_else(|| panic!("no buffer for `{arg}`"));
                let b = self
                    .device
                    .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                        label: Some(arg),
                        contents: data,
                        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
                    });
                if arg == "out" {
                    out = Some(bound.len());
                }
                b
            };
            bound.push(buffer);
        }
        let entries: Vec<wgpu::BindGroupEntry> = bound
            .iter()
            .enumerate()
            .map(|(i, b)| wgpu::BindGroupEntry {
                binding: i as u32,
                resource: b.as_entire_binding(),
            })
            .collect();
        let group = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &pipeline.get_bind_group_layout(0),
            entries: &entries,
        });
        let out = &bound[out.expect("the kernel writes `out`")];
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: None,
            size: out.size(),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut encoder = self.device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            pass.set_pipeline(&pipeline);
            pass.set_bind_group(0, &group, &[]);
            pass.dispatch_workgroups(grid[0], grid[1], grid[2]);
        }
        encoder.copy_buffer_to_buffer(out, 0, &staging, 0, out.size());
        self.queue.submit([encoder.finish()]);
        staging.map_async(wgpu::MapMode::Read, .., |r| r.unwrap());
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .unwrap();
        let bytes = staging.get_mapped_range(..).unwrap();
        bytemuck::cast_slice::<u8, f32>(&bytes).to_vec()
    }
}

/// The page's launch rules.
fn grid(kernel: &Value, q_heads: u32, rows: u32, max_row_len: u32, n_items: u32) -> [u32; 3] {
    let g = &kernel["abi"]["grid"];
    let tiles = |q: &Value| max_row_len.div_ceil(q.as_u64().unwrap() as u32);
    match g["rule"].as_str().unwrap() {
        "query_tiles" => [tiles(&g["q_tile"]), q_heads, rows],
        "work_items" => [n_items, 1, 1],
        "query_heads" => [q_heads, rows, 1],
        other => panic!("rule {other} not expected in a WGSL manifest"),
    }
}

fn close(got: &[f32], want: &[f32], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}");
    // NaN-aware (a fold with f32::max alone skips NaN).
    let worst = moa::runtime::cases::max_abs_error(got, want).0;
    assert!(worst < 1e-4, "{what}: max |error| {worst}");
}

#[test]
fn an_app_binds_prefill_decode_and_merge_from_the_manifest_alone() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let plan = Plan::load(&root.join("plans/fixture-gqa.toml")).unwrap();
    let compiled = moa::compile(&plan, &[Target::Wgsl], StorageType::F32).unwrap();
    app_matches_reference(&compiled, "embedding-app", false);
}

/// The page's `rules` row (round 33), run: kernels written through the library with
/// `WgslTuning::rules_table` read each query head's rule from a table the app fills from
/// `cache_layout` alone. Layer 0 of fixture-gqa has a negative α (−32), so the i32 bits
/// are exercised, and its heads' rules differ, so a wrong table masks wrongly.
#[test]
fn an_app_fills_the_rules_table_of_library_kernels_from_the_manifest_alone() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let plan = Plan::load(&root.join("plans/fixture-gqa.toml")).unwrap();
    let tuning = moa::codegen::wgsl::WgslTuning {
        rules_table: true,
        ..moa::codegen::wgsl::WgslTuning::default()
    };
    let compiled = moa::Compiled::wgsl_with(&plan, StorageType::F32, tuning).unwrap();
    app_matches_reference(&compiled, "embedding-app-rules-table", true);
}

/// The app: writes `compiled` to the folder `dir_name`, then from that folder and the page
/// alone runs layer 0's prefill, decode and merge and compares them with moa's CPU
/// reference. `rules_table`: the prefill and decode must take the page's `rules` argument.
fn app_matches_reference(compiled: &moa::Compiled, dir_name: &str, rules_table: bool) {
    let out_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(dir_name);
    let _ = std::fs::remove_dir_all(&out_dir);
    compiled.write(&out_dir).unwrap();

    // ---- what the app knows: the folder ----
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("manifest.json")).unwrap())
            .unwrap();
    let model = &manifest["model"];
    let u = |v: &Value| v.as_u64().unwrap() as u32;
    let (hq, hkv, d) = (
        u(&model["q_heads"]),
        u(&model["kv_heads"]),
        u(&model["head_dim"]),
    );
    // N below the plan's context: the layout is computed by the page's formula.
    let n = 700;
    let group = hq / hkv;
    let layer = 0u32;
    let kernel = |phase: &str| -> (String, Value) {
        for f in manifest["files"].as_array().unwrap() {
            for k in f["kernels"].as_array().unwrap() {
                let layer_ok = k["layer"].as_u64().is_none_or(|l| l == u64::from(layer));
                // The scalar decode: the page's alternative needs cooperative matrices.
                let plain = k["abi"]["tiles"].get("subgroups").is_none();
                if k["phase"] == phase && layer_ok && plain {
                    let path = out_dir.join(f["path"].as_str().unwrap());
                    let text = std::fs::read_to_string(&path).unwrap();
                    assert_eq!(text.len() as u64, f["bytes"].as_u64().unwrap());
                    return (text, k.clone());
                }
            }
        }
        panic!("no {phase} kernel for layer {layer}");
    };
    let f32_bytes = |v: &[f32]| bytemuck::cast_slice::<f32, u8>(v).to_vec();
    let u32_bytes = |v: &[u32]| bytemuck::cast_slice::<u32, u8>(v).to_vec();
    // The `rules` table, as the page's row says: per query head of the layer, `alpha`'s
    // i32 bits then `beta_num`. Bound only where a kernel lists the argument.
    let rules: Vec<u32> = manifest["cache_layout"]["layers"][layer as usize]["q_heads"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|h| {
            let alpha = h["rule"]["alpha"].as_i64().unwrap() as i32;
            [alpha as u32, u(&h["rule"]["beta_num"])]
        })
        .collect();
    let takes_rules = |k: &Value| {
        k["abi"]["params"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["arg"] == "rules")
    };
    let g = gpu();
    let mut rng = StdRng::seed_from_u64(7);

    // ---- prefill: two packed rows ----
    let lens = [300u32, 33];
    let row_start = [0, lens[0], lens[0] + lens[1]];
    let total = row_start[2] as usize;
    let q = rand_vec(&mut rng, total * (hq * d) as usize);
    let k = rand_vec(&mut rng, total * (hkv * d) as usize);
    let v = rand_vec(&mut rng, total * (hkv * d) as usize);
    let (src, pk) = kernel("prefill");
    let buffers = HashMap::from([
        ("row_start", u32_bytes(&row_start)),
        ("q", f32_bytes(&q)),
        ("k", f32_bytes(&k)),
        ("v", f32_bytes(&v)),
        ("out", vec![0u8; total * (hq * d) as usize * 4]),
        ("rules", u32_bytes(&rules)),
    ]);
    assert_eq!(takes_rules(&pk), rules_table, "prefill's `rules` argument");
    let words = HashMap::from([("n_tokens", n), ("rows", 2)]);
    let got = g.run(&src, &pk, &buffers, &words, grid(&pk, hq, 2, lens[0], 0));
    // ---- the oracle ----
    let module = compiled.module();
    let spec = &module.layers[layer as usize];
    let want = prefill_ref(spec, &module.span, n, d as usize, &q, &k, &v, &row_start);
    close(&got, &want, "prefill");

    // ---- decode: the layout by the page's span formula, the cache by its slot rule ----
    let span_c = &manifest["span"];
    let segments_at = |n: u32| -> Vec<[u32; 4]> {
        let (min, round) = (
            i64::from(u(&span_c["min_span_tokens"])),
            i64::from(u(&span_c["span_round_tokens"])),
        );
        let round_up = |x: i64| (x + round - 1) / round * round;
        let heads = manifest["cache_layout"]["layers"][layer as usize]["q_heads"]
            .as_array()
            .unwrap();
        let mut spans = vec![0i64; hkv as usize];
        for h in heads {
            let rule = &h["rule"];
            let raw = rule["alpha"].as_i64().unwrap()
                + (rule["beta_num"].as_u64().unwrap() * u64::from(n) / 4096) as i64;
            let s = match span_c["mode"].as_str().unwrap() {
                "moa" => round_up(raw.max(min)).min(i64::from(n)),
                _ => round_up(raw.min(i64::from(n)).max(min)),
            };
            let kv = h["kv_head"].as_u64().unwrap() as usize;
            spans[kv] = spans[kv].max(s);
        }
        let mut offset = 0;
        spans
            .iter()
            .map(|&s| {
                let (s, sink) = (s as u32, (s as u32).min(u(&span_c["sink_tokens"])));
                let seg = [offset, s, sink, s - sink];
                offset += s;
                seg
            })
            .collect()
    };
    // The formula gives the manifest's own layout at the plan's context.
    let at = &manifest["cache_layout"]["at_max_context"][layer as usize];
    let listed: Vec<[u32; 4]> = at["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| [u(&s["offset"]), u(&s["span"]), u(&s["sink"]), u(&s["ring"])])
        .collect();
    assert_eq!(segments_at(u(&model["max_context_tokens"])), listed);
    let segs = segments_at(n);
    let row_slots = segs.iter().map(|s| s[1] as usize).sum::<usize>();
    let row_pos = [300u32, 45];
    let rows = row_pos.len();
    let (du, hkvu) = (d as usize, hkv as usize);
    let mut k_cache = vec![0f32; rows * row_slots * du];
    let mut v_cache = vec![0f32; rows * row_slots * du];
    for (b, &t) in row_pos.iter().enumerate() {
        for p in 0..=t {
            let kt = rand_vec(&mut rng, hkvu * du);
            let vt = rand_vec(&mut rng, hkvu * du);
            for (h, &[offset, span, sink, ring]) in segs.iter().enumerate() {
                if span == 0 {
                    continue;
                }
                let slot = if p < sink {
                    p
                } else {
                    sink + (p - sink) % ring.max(1)
                };
                let at = (b * row_slots + (offset + slot) as usize) * du;
                k_cache[at..at + du].copy_from_slice(&kt[h * du..][..du]);
                v_cache[at..at + du].copy_from_slice(&vt[h * du..][..du]);
            }
        }
    }
    // The page's work list: chunks of tiles.k_tile written slots per segment.
    let (src, dk) = kernel("decode");
    let chunk = u(&dk["abi"]["tiles"]["k_tile"]);
    let mut work = Vec::new();
    for (b, &t) in row_pos.iter().enumerate() {
        for (h, &[offset, span, ..]) in segs.iter().enumerate() {
            let written = span.min(t + 1);
            let items = written.div_ceil(chunk).max(1);
            let first = (work.len() / 8) as u32;
            for c in 0..items {
                let c0 = (c * chunk).min(written);
                let c1 = (c0 + chunk).min(written);
                let seg = (b * hkvu + h) as u32;
                work.extend([seg, c0, c1, first, offset, span, row_slots as u32, items]);
            }
        }
    }
    let n_items = (work.len() / 8) as u32;
    let qd = rand_vec(&mut rng, rows * (hq * d) as usize);
    let partials = vec![0u8; n_items as usize * (group * (d + 2)) as usize * 4];
    let mut buffers = HashMap::from([
        ("row_pos", u32_bytes(&row_pos)),
        ("q", f32_bytes(&qd)),
        ("k_cache", f32_bytes(&k_cache)),
        ("v_cache", f32_bytes(&v_cache)),
        ("work", u32_bytes(&work)),
        ("partials", partials),
        ("out", vec![0u8; rows * (hq * d) as usize * 4]),
        ("rules", u32_bytes(&rules)),
    ]);
    assert_eq!(takes_rules(&dk), rules_table, "decode's `rules` argument");
    let words = HashMap::from([("n_tokens", n), ("rows", rows as u32), ("n_items", n_items)]);
    // The decode's `partials` are its output; the merge reads them and writes `out`.
    let mut decode_kernel = dk.clone();
    for p in decode_kernel["abi"]["params"].as_array_mut().unwrap() {
        if p["arg"] == "partials" {
            p["arg"] = "out".into();
        }
    }
    let partial_out = buffers.remove("partials").unwrap();
    let mut as_out = buffers.clone();
    as_out.insert("out", partial_out);
    let partials = g.run(
        &src,
        &decode_kernel,
        &as_out,
        &words,
        grid(&dk, hq, rows as u32, 0, n_items),
    );
    let (msrc, mk) = kernel("decode_merge");
    buffers.insert("partials", f32_bytes(&partials));
    let got = g.run(
        &msrc,
        &mk,
        &buffers,
        &words,
        grid(&mk, hq, rows as u32, 0, n_items),
    );
    let layout = CacheLayout::new(spec, &module.span, n);
    let moa_segs: Vec<[u32; 4]> = layout
        .segments
        .iter()
        .map(|s| [s.offset, s.span, s.sink, s.ring])
        .collect();
    assert_eq!(segs, moa_segs, "the page's layout at N = {n} against moa's");
    let want = decode_ref(
        spec,
        &module.span,
        &layout,
        du,
        &qd,
        &k_cache,
        &v_cache,
        &row_pos,
    );
    close(&got, &want, "decode + merge");
}
