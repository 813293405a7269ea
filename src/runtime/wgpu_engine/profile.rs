//! Where a pass's time goes, per dispatch kind (issue 12 item 3): each kind's dispatches
//! of one recorded pass are encoded alone, repeated, into one command buffer, and timed
//! on the host from submission to completion (device time plus one round trip, which an
//! empty submission measures and is subtracted). Timestamp queries would need a device
//! feature that not every adapter has; this needs none, so it runs on any adapter.
//!
//! A kind run alone reads what the last real pass left in its inputs, so its results
//! are meaningless but its work is the same: the products' and the attention's costs
//! do not depend on the values. Run it after the request's last real step (it
//! overwrites activations and the newest cache slots).

#![warn(missing_docs)]

use std::time::Instant;

use super::forward::{pack_rows, OutputKind};
use super::record::Recorded;
use super::request::{WgpuRequest, BACKEND};
use super::{EngineError, WgpuEngine};
use crate::runtime::engine::Request;
use crate::runtime::wgpu::Dispatch;

/// One dispatch kind's share of a pass.
#[derive(Clone, Debug, PartialEq)]
pub struct KindTime {
    /// "embed", "qkv", "attention", "merge" (the decode attention's merge, apart from its
    /// kernel), "out", "gate_up", "down", "head", "argmax", "sample"; where the pass does
    /// not fuse (prefill) also "norm" (the RMSNorms), "rope" (RoPE + the cache write) and
    /// "swiglu" (session 28; before it "qkv" held the norm and RoPE, and "mlp" the second
    /// norm, gate/up, SwiGLU and down); "step" for the whole pass and
    /// "probe" for as many one-workgroup embedding gathers as the pass has dispatches
    /// (the fixed cost of a dispatch and its barrier on this adapter); "probe_free" for as
    /// many one-workgroup dispatches of an empty kernel that only reads (no barrier
    /// between them: wgpu orders only writes), and "probe_wide" for the probe with as many
    /// workgroups as the step's largest dispatch (the cost of launching a grid); a decode
    /// profile ends with "step_submits", "step_cbs", "step_cbs_nofeed" and "step_passes",
    /// the step with what a request's steps have between them, piece by piece
    /// (`StepBoundary`).
    pub kind: String,
    /// Dispatches of this kind in one pass.
    pub dispatches: usize,
    /// Host seconds to finish the encoder of one pass's dispatches of this kind (wgpu's
    /// validation and encoding for the driver).
    pub finish_s: f64,
    /// Seconds from submission to completion for one pass's dispatches of this kind,
    /// less an empty submission's round trip.
    pub device_s: f64,
}

impl KindTime {
    /// `kind: n dispatches, x us device (y us/dispatch), z us host finish`.
    pub fn line(&self) -> String {
        format!(
            "{:>9}: {:>4} dispatches, {:>9.1} us device ({:>7.2} us/dispatch), {:>8.1} us host finish",
            self.kind,
            self.dispatches,
            self.device_s * 1e6,
            self.device_s * 1e6 / self.dispatches.max(1) as f64,
            self.finish_s * 1e6
        )
    }
}

/// What stands between the steps a decode profile's boundary rows time
/// (`WgpuEngine::time_step_buffers`).
#[derive(Clone, Copy, Debug, PartialEq)]
enum StepBoundary {
    /// "step_submits": as the engine runs a request's steps (`forward::forward_decode`,
    /// a step submitted ahead): each step writes its inputs through the queue
    /// (`write_step_inputs`) and submits a command buffer of its own holding the tokens'
    /// feed copy (unless they are read in place), the pass and the read-back copy.
    Submits,
    /// "step_cbs": the same command buffers in one submission, nothing written.
    CommandBuffers,
    /// "step_cbs_nofeed": those command buffers without the feed copy.
    NoFeed,
    /// "step_passes": one command buffer, a compute pass a step, no copies.
    Passes,
}

impl WgpuEngine {
    /// Times `dispatches` repeated `repeats` times in one compute pass: (host seconds to
    /// finish the encoder, seconds from submission to completion), each per repeat.
    fn time_dispatches(
        &self,
        dispatches: &[&Dispatch],
        repeats: usize,
    ) -> Result<(f64, f64), EngineError> {
        let repeats = repeats.max(1);
        let mut encoder = self.device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            for _ in 0..repeats {
                for d in dispatches {
                    d.encode(&mut pass);
                }
            }
        }
        let t0 = Instant::now();
        let cb = encoder.finish();
        let finish = t0.elapsed().as_secs_f64();
        let t1 = Instant::now();
        self.queue.submit([cb]);
        self.wait_for(None)?;
        let r = repeats as f64;
        Ok((finish / r, t1.elapsed().as_secs_f64() / r))
    }

    /// Per kind (in pass order), then the whole pass and the probe: each timed
    /// `repeats` times in one submission, the best of `trials` submissions (after one
    /// untimed warm-up submission when `trials` > 1).
    fn profile_recorded(
        &self,
        rec: &Recorded,
        repeats: usize,
        trials: usize,
    ) -> Result<Vec<KindTime>, EngineError> {
        let mut kinds: Vec<&'static str> = Vec::new();
        for &k in &rec.kinds {
            if !kinds.contains(&k) {
                kinds.push(k);
            }
        }
        // An empty submission's round trip, subtracted from every timing.
        let empty = self.empty_round_trip()?;
        // `ds`'s best times, as `kind`.
        let best = |kind: &str, ds: &[&Dispatch]| -> Result<KindTime, EngineError> {
            let mut b = (f64::INFINITY, f64::INFINITY);
            // The first submission warms the pipelines and caches.
            if trials > 1 {
                self.time_dispatches(ds, 1)?;
            }
            for _ in 0..trials.max(1) {
                let (f, t) = self.time_dispatches(ds, repeats)?;
                b = (b.0.min(f), b.1.min(t));
            }
            Ok(KindTime {
                kind: kind.to_string(),
                dispatches: ds.len(),
                finish_s: b.0,
                device_s: (b.1 - empty / repeats.max(1) as f64).max(0.0),
            })
        };
        let mut out = Vec::new();
        for kind in kinds {
            let ds: Vec<&Dispatch> = rec
                .dispatches
                .iter()
                .zip(&rec.kinds)
                .filter(|(_, &k)| k == kind)
                .map(|(d, _)| d)
                .collect();
            out.push(best(kind, &ds)?);
        }
        let all: Vec<&Dispatch> = rec.dispatches.iter().collect();
        out.push(best("step", &all)?);
        // The embedding gather of one workgroup: as little work as a dispatch can do.
        if let Some(first) = rec.dispatches.first() {
            let mut probe = first.clone();
            probe.groups = [1, 1, 1];
            let probes = vec![&probe; all.len()];
            out.push(best("probe", &probes)?);
            // The same gathers with the grid of the step's largest dispatch: what a
            // dispatch's size adds to its fixed cost (the gather's workgroups past the
            // token count return at once).
            let widest = rec
                .dispatches
                .iter()
                .map(|d| d.groups.iter().map(|&g| u64::from(g)).product::<u64>())
                .max()
                .unwrap_or(1);
            let max_dim = u64::from(self.device.limits().max_compute_workgroups_per_dimension);
            let mut wide = first.clone();
            wide.groups = [
                widest.min(max_dim) as u32,
                widest.div_ceil(max_dim).max(1) as u32,
                1,
            ];
            let wides = vec![&wide; all.len()];
            out.push(best("probe_wide", &wides)?);
            let free = self.read_only_probe()?;
            let frees = vec![&free; all.len()];
            out.push(best("probe_free", &frees)?);
        }
        Ok(out)
    }

    /// One workgroup of a kernel that reads one storage buffer and writes nothing: wgpu
    /// puts no barrier between such dispatches (it orders writes only), so a run of them
    /// measures a dispatch without the wait for the previous one.
    fn read_only_probe(&self) -> Result<Dispatch, EngineError> {
        const SOURCE: &str = "@group(0) @binding(0) var<storage, read> d: array<u32>;\n\
             @compute @workgroup_size(64)\n\
             fn moa_probe(@builtin(local_invocation_index) i: u32) {\n\
                 if (i > 64u) { _ = d[0]; }\n\
             }\n";
        let module = self
            .device
            .create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some("read-only probe"),
                source: wgpu::ShaderSource::Wgsl(SOURCE.into()),
            });
        let pipeline = self
            .device
            .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some("read-only probe"),
                layout: None,
                module: &module,
                entry_point: Some("moa_probe"),
                compilation_options: Default::default(),
                cache: None,
            });
        let buf = self.buffer("read-only probe", 16)?;
        Ok(self.dispatch(&pipeline, &[&buf], [1, 1, 1]))
    }

    /// Where a greedy decode step of `req` spends its time, per dispatch kind (module
    /// doc), each timed over `repeats` steps' worth of dispatches. Call it after the
    /// request's last decode step: it overwrites the step's activations and caches'
    /// newest slots. Errors: a request of another engine, a device error.
    pub fn profile_decode(
        &self,
        req: &Request,
        repeats: usize,
    ) -> Result<Vec<KindTime>, EngineError> {
        let st = req.state::<WgpuRequest>(BACKEND)?;
        let rec = self.record_marked(req, &st.decode_io, OutputKind::Argmax)?;
        let mut out = self.profile_recorded(&rec, repeats, 3)?;
        let empty = self.empty_round_trip()?;
        for (kind, boundary) in [
            ("step_submits", StepBoundary::Submits),
            ("step_cbs", StepBoundary::CommandBuffers),
            ("step_cbs_nofeed", StepBoundary::NoFeed),
            ("step_passes", StepBoundary::Passes),
        ] {
            let mut b = f64::INFINITY;
            self.time_step_buffers(req, &rec, 1, boundary)?;
            for _ in 0..3 {
                b = b.min(self.time_step_buffers(req, &rec, repeats, boundary)?);
            }
            out.push(KindTime {
                kind: kind.to_string(),
                dispatches: rec.dispatches.len(),
                finish_s: 0.0,
                device_s: (b - empty / repeats.max(1) as f64).max(0.0),
            });
        }
        Ok(out)
    }

    /// The shortest of five empty submissions' round trips (seconds).
    fn empty_round_trip(&self) -> Result<f64, EngineError> {
        (0..5)
            .map(|_| self.time_dispatches(&[], 1).map(|t| t.1))
            .collect::<Result<Vec<_>, _>>()
            .map(|v| v.into_iter().fold(f64::INFINITY, f64::min))
    }

    /// `repeats` greedy decode steps back to back, with `boundary` between them (see
    /// [`StepBoundary`]). Seconds per step from the first submission to the last one's
    /// completion. Against "step" (the same passes in one compute pass), what the
    /// boundaries between a request's steps cost (issue 12 item 3: the wall step ran
    /// ≈ 50-60 µs over the profiled step on the H200, benches/RESULTS.md "Session 43,
    /// lead call 3").
    fn time_step_buffers(
        &self,
        req: &Request,
        rec: &Recorded,
        repeats: usize,
        boundary: StepBoundary,
    ) -> Result<f64, EngineError> {
        let st = req.state::<WgpuRequest>(BACKEND)?;
        let (src, words) = self.output_buffer(req, OutputKind::Argmax, req.rows())?;
        let bytes = (words * 4) as u64;
        let staging = self.readback_buffer("profile read-back", bytes);
        // As the engine feeds a step submitted ahead (none where it reads in place).
        let feed = (boundary != StepBoundary::NoFeed && !st.tokens_in_place)
            .then_some((&st.act.tokens_out, &st.decode_io.tokens));
        let t0;
        if boundary == StepBoundary::Passes {
            let mut encoder = self.device.create_command_encoder(&Default::default());
            for _ in 0..repeats.max(1) {
                let mut pass = encoder.begin_compute_pass(&Default::default());
                for d in &rec.dispatches {
                    d.encode(&mut pass);
                }
            }
            let cb = encoder.finish();
            t0 = Instant::now();
            self.queue.submit([cb]);
        } else {
            let cbs: Vec<wgpu::CommandBuffer> = (0..repeats.max(1))
                .map(|_| {
                    self.encode_step(&rec.dispatches, src, &staging, bytes, feed)
                        .0
                })
                .collect();
            t0 = Instant::now();
            if boundary == StepBoundary::Submits {
                for cb in cbs {
                    self.write_step_inputs(req, &[], 0)?;
                    self.queue.submit([cb]);
                }
            } else {
                self.queue.submit(cbs);
            }
        }
        self.wait_for(None)?;
        Ok(t0.elapsed().as_secs_f64() / repeats.max(1) as f64)
    }

    /// Where the first prefill pass of `prompts` (as [`Engine::prefill`] would group
    /// them) spends its time, per dispatch kind, each kind run once (a pass takes seconds:
    /// no warm-up, no best of several). Call it on a request
    /// whose prefill and decode are done (it overwrites the caches' slots of the prompts).
    /// Errors: prompts the request was not sized for, a device error.
    ///
    /// [`Engine::prefill`]: crate::runtime::engine::Engine
    pub fn profile_prefill(
        &self,
        req: &Request,
        prompts: &[Vec<u32>],
    ) -> Result<Vec<KindTime>, EngineError> {
        let lens: Vec<usize> = prompts.iter().map(Vec::len).collect();
        let st = req.state::<WgpuRequest>(BACKEND)?;
        let plan = super::chunks::group_rows(
            &lens,
            &st.act.limits(),
            super::chunks::kv_bytes_per_token(&self.config, self.storage),
            self.max_binding,
        )?;
        let Some(rows) = plan.groups.first() else {
            return Ok(Vec::new());
        };
        let (tokens, info, row_start, last) = pack_rows(prompts, rows.clone());
        let io = self.step_io(&tokens, &info, &last, Some(&row_start));
        let rec = self.record_marked(req, &io, OutputKind::Argmax)?;
        self.profile_recorded(&rec, 1, 1)
    }
}

#[cfg(test)]
mod tests {
    use super::super::WgpuEngine;
    use crate::model::random::{like, random_model};
    use crate::runtime::engine::{Engine, Sampling};
    use crate::runtime::wgpu::WgpuContext;

    /// A prefill pass's profile names the norms, RoPE + cache write and SwiGLU apart from
    /// the products (session 28), in recording order, and its kinds' dispatches add up to
    /// the whole pass's.
    #[test]
    fn the_prefill_profile_times_norm_rope_and_swiglu_apart() {
        let ctx = WgpuContext::new().expect("a wgpu adapter (lavapipe in CI)");
        let mut c = like("smollm2-135m").unwrap();
        (c.n_layers, c.hidden_size, c.ffn_size, c.vocab_size) = (1, 64, 96, 50);
        (c.q_heads, c.kv_heads, c.head_dim) = (4, 2, 16);
        c.context_length = 256;
        let model = random_model(&c, 5);
        let gpu = WgpuEngine::new(&ctx, &model, None, false).unwrap();
        // 73 tokens: more than the fused decode-sized passes take.
        let prompts: Vec<Vec<u32>> = [40usize, 33]
            .iter()
            .map(|&n| (0..n as u32).map(|i| i * 7 % 50).collect())
            .collect();
        let lens: Vec<usize> = prompts.iter().map(Vec::len).collect();
        let mut req = gpu.start(&lens, 2, 0).unwrap();
        gpu.prefill_tokens(&mut req, &prompts, Sampling::greedy())
            .unwrap();
        let kinds = gpu.profile_prefill(&req, &prompts).unwrap();
        let names: Vec<&str> = kinds.iter().map(|k| k.kind.as_str()).collect();
        let step = names.iter().position(|&n| n == "step").unwrap();
        assert_eq!(
            names[..step],
            [
                "embed",
                "norm",
                "qkv",
                "rope",
                "attention",
                "out",
                "gate_up",
                "swiglu",
                "down",
                "head",
                "argmax"
            ],
            "{names:?}"
        );
        let sum: usize = kinds[..step].iter().map(|k| k.dispatches).sum();
        assert_eq!(sum, kinds[step].dispatches);
        // Both RMSNorms of the one layer.
        assert_eq!(kinds[1].dispatches, 2);
    }
}
