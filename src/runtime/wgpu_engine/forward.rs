//! Running recorded passes: one submission (or one per layer, for prefill progress),
//! read-back of the logits or the chosen tokens, and the prefill and decode steps that
//! write a pass's inputs and keep each row's position.

#![warn(missing_docs)]

use std::time::Instant;

use super::chunks;
use super::request::{Ahead, WgpuRequest, BACKEND};
use super::{EngineError, WgpuEngine};
use crate::runtime::engine::{check_pass_tokens, PrefillProgress, Request, Sampling};
use crate::runtime::wgpu::Dispatch;

/// A packed prefill batch: tokens, per-token (position, row, last position, 0),
/// `row_start`, and the index of each row's last token.
pub(super) type PackedPrefill = (Vec<u32>, Vec<[u32; 4]>, Vec<u32>, Vec<u32>);

/// What a forward pass returns: logits, or the chosen token of each row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum OutputKind {
    Logits,
    Argmax,
    /// Temperature and top-p as f32 bits (they go into a uniform as is), and top-k.
    Sample {
        temperature: u32,
        top_p: u32,
        top_k: u32,
    },
}

impl OutputKind {
    pub(super) fn of(s: Sampling) -> OutputKind {
        if s.is_greedy() {
            OutputKind::Argmax
        } else {
            OutputKind::Sample {
                temperature: s.temperature.to_bits(),
                top_p: s.top_p.clamp(0.0, 1.0).to_bits(),
                top_k: s.top_k,
            }
        }
    }
}

impl WgpuEngine {
    /// Encodes `dispatches` into one command buffer, submits it and reads back the
    /// logits or the chosen tokens.
    pub(super) fn run_pass(
        &self,
        req: &Request,
        dispatches: &[Dispatch],
        output: OutputKind,
        rows: usize,
    ) -> Result<Vec<u32>, EngineError> {
        Ok(self.run_pass_timed(req, dispatches, output, rows)?.0)
    }

    /// [`Self::run_pass`], also returning the seconds spent encoding the dispatches on the
    /// host and the seconds from submission to the result on the host (the device's work
    /// plus one round trip).
    pub(super) fn run_pass_timed(
        &self,
        req: &Request,
        dispatches: &[Dispatch],
        output: OutputKind,
        rows: usize,
    ) -> Result<(Vec<u32>, f64, f64), EngineError> {
        let t0 = Instant::now();
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let mut encoder = self.device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            for d in dispatches {
                d.encode(&mut pass);
            }
        }
        let encode = t0.elapsed().as_secs_f64();
        let (src, words) = self.output_buffer(req, output, rows)?;
        let t1 = Instant::now();
        let out = self.read_back(scope, encoder, src, words)?;
        Ok((out, encode, t1.elapsed().as_secs_f64()))
    }

    /// [`Self::run_pass`] submitted one layer at a time, waiting for each, so `progress`
    /// hears of every finished layer (the count of layers done): real progress of a prefill
    /// pass (every layer processes every token), at one device round trip per layer.
    pub(super) fn run_pass_by_layer(
        &self,
        req: &Request,
        dispatches: &[Dispatch],
        layer_end: &[usize],
        output: OutputKind,
        rows: usize,
        progress: &mut dyn FnMut(usize),
    ) -> Result<Vec<u32>, EngineError> {
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let encode = |range: &[Dispatch]| {
            let mut encoder = self.device.create_command_encoder(&Default::default());
            {
                let mut pass = encoder.begin_compute_pass(&Default::default());
                for d in range {
                    d.encode(&mut pass);
                }
            }
            encoder
        };
        let mut start = 0;
        for (i, &end) in layer_end.iter().enumerate() {
            self.queue
                .submit([encode(&dispatches[start..end]).finish()]);
            self.wait_for(None)?;
            start = end;
            progress(i + 1);
        }
        let (src, words) = self.output_buffer(req, output, rows)?;
        self.read_back(scope, encode(&dispatches[start..]), src, words)
    }

    /// The buffer a pass's result is read from and its length in 32-bit words: the
    /// logits `[rows][vocab]` or the chosen tokens `[rows]` of the pass's `rows` rows.
    pub(super) fn output_buffer<'r>(
        &self,
        req: &'r Request,
        output: OutputKind,
        rows: usize,
    ) -> Result<(&'r wgpu::Buffer, usize), EngineError> {
        let act = &req.state::<WgpuRequest>(BACKEND)?.act;
        Ok(match output {
            OutputKind::Logits => (&act.logits, rows * self.config.vocab_size),
            _ => (&act.tokens_out, rows),
        })
    }

    /// Draws this step's uniform numbers for sampling (one per row).
    pub(super) fn write_uniforms(&self, req: &mut Request, io_uniforms: &wgpu::Buffer) {
        let u: Vec<u32> = req.draw_uniforms().iter().map(|x| x.to_bits()).collect();
        self.queue
            .write_buffer(io_uniforms, 0, bytemuck::cast_slice(&u));
    }

    /// The prefill of every row: one pass per group of rows that fits the binding limit
    /// (`chunks::group_rows`; one pass when everything fits), each submitted at once or one
    /// layer at a time with `progress`, whose `layers` then counts every pass's layers
    /// (passes × layers) so that `fraction()` stays the share of the work done. The
    /// sampling uniforms are drawn once for all rows (one per row per prefill, as on every
    /// back end) and each pass gets its rows' share.
    pub(super) fn forward_prefill(
        &self,
        req: &mut Request,
        prompts: &[Vec<u32>],
        output: OutputKind,
        mut progress: Option<&mut dyn FnMut(&PrefillProgress)>,
    ) -> Result<Vec<u32>, EngineError> {
        self.check_prefill(req, prompts)?;
        // A decode step submitted ahead was for the old positions: never this request's
        // next step now (queue order runs it before this prefill, whose slots and later
        // steps' writes overwrite what it wrote before anything reads them).
        req.state_mut::<WgpuRequest>(BACKEND)?.ahead = None;
        let lens: Vec<usize> = prompts.iter().map(Vec::len).collect();
        let total: usize = lens.iter().sum();
        let st = req.state::<WgpuRequest>(BACKEND)?;
        let plan = chunks::group_rows(
            &lens,
            &st.act.limits(),
            chunks::kv_bytes_per_token(&self.config, self.storage),
            self.max_binding,
        )?;
        let uniforms: Vec<u32> = req.draw_uniforms().iter().map(|x| x.to_bits()).collect();
        let layers = self.layers.len();
        let passes = plan.groups.len();
        let t0 = Instant::now();
        let mut out = Vec::new();
        for (g, rows) in plan.groups.iter().enumerate() {
            let (tokens, info, row_start, last) = pack_rows(prompts, rows.clone());
            let io = self.step_io(&tokens, &info, &last, Some(&row_start));
            self.queue.write_buffer(
                &io.uniforms,
                0,
                bytemuck::cast_slice(&uniforms[rows.clone()]),
            );
            let n = rows.len();
            let part = match progress.as_deref_mut() {
                None => {
                    let rec = self.record(req, &io, output)?;
                    self.run_pass(req, &rec, output, n)?
                }
                Some(progress) => {
                    let rec = self.record_marked(req, &io, output)?;
                    let (rec, layer_end) = (rec.dispatches, rec.layer_end);
                    let mut report = |done: usize| {
                        progress(&PrefillProgress {
                            layers_done: g * layers + done,
                            layers: passes * layers,
                            tokens: total,
                            elapsed: t0.elapsed(),
                        })
                    };
                    self.run_pass_by_layer(req, &rec, &layer_end, output, n, &mut report)?
                }
            };
            out.extend(part);
        }
        Ok(out)
    }

    /// A decode pass: one token per row, through the request's recorded dispatches.
    ///
    /// Greedy steps with `submit_ahead` (the default) also submit the next step before
    /// waiting for this one: its tokens are copied on the device from this step's output
    /// and its positions are one on, so the device runs steps back to back instead of
    /// idling for each step's round trip to the host and back. When the next call feeds
    /// back those tokens (a greedy loop does), that step is already running. Other tokens
    /// or another output kind wait for it and run the step again at the same positions:
    /// it rewrites the same cache slots and activations, so the result is that of a step
    /// run on demand. A request that stops leaves one such step unused.
    pub(super) fn forward_decode(
        &self,
        req: &mut Request,
        tokens: &[u32],
        output: OutputKind,
    ) -> Result<Vec<u32>, EngineError> {
        req.check_decode(tokens, self.config.vocab_size)?;
        let t_call = Instant::now();
        let st = req.state::<WgpuRequest>(BACKEND)?;
        let stale = !matches!(&st.decode_record, Some((k, _)) if *k == output);
        if stale {
            let rec = self.record_marked(req, &st.decode_io, output)?;
            let st = req.state_mut::<WgpuRequest>(BACKEND)?;
            st.decode_record = Some((output, rec));
            // A command buffer encoded for the old record is not this step's.
            st.next_step = None;
        }
        let (src, words) = self.output_buffer(req, output, req.rows())?;
        let src = src.clone();
        let bytes = (words * 4) as u64;
        let st = req.state_mut::<WgpuRequest>(BACKEND)?;
        if st
            .decode_staging
            .first()
            .is_none_or(|b| b.size() != bytes.max(4))
        {
            st.decode_staging = (0..2)
                .map(|_| self.readback_buffer("decode readback", bytes))
                .collect();
            // Encoded for the old read-back buffers.
            st.next_step = None;
        }
        let ahead = st.ahead.take();
        let (index, turn, scope, submit_t) = match ahead {
            Some(a) if a.output == output && a.input == tokens => {
                // Already running. Draw this step's sampling numbers all the same, so the
                // request's generator stays where steps run on demand leave it.
                let uniforms = st.decode_io.uniforms.clone();
                self.write_uniforms(req, &uniforms);
                let st = req.state_mut::<WgpuRequest>(BACKEND)?;
                st.stats.ahead += 1;
                (a.index, a.staging, None, t_call)
            }
            stale_ahead => {
                if let Some(a) = stale_ahead {
                    // Its writes are redone below, after it.
                    self.wait_for(Some(a.index))?;
                }
                self.write_step_inputs(req, tokens, 0)?;
                let uniforms = req
                    .state::<WgpuRequest>(BACKEND)?
                    .decode_io
                    .uniforms
                    .clone();
                self.write_uniforms(req, &uniforms);
                let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
                // The command buffer encoded during the previous step (the same
                // dispatches over the same buffers: this step's inputs were written
                // above, and `write_buffer`s run before the next submission), else
                // encoded now.
                let st = req.state_mut::<WgpuRequest>(BACKEND)?;
                let ready = st.next_step.take().filter(|(k, _, _)| *k == output);
                let (turn, cb, encode, finish) = match ready {
                    Some((_, turn, cb)) => (turn, cb, 0.0, 0.0),
                    None => self.encode_next_step(st, &src, bytes, false)?,
                };
                st.stats.encode_s += encode;
                st.stats.finish_s += finish;
                let t1 = Instant::now();
                (self.queue.submit([cb]), turn, Some(scope), t1)
            }
        };
        // The next step: submitted now (greedy, and the request has room for it), else
        // encoded while the device runs this one (the host's share of a step: wgpu
        // validates and records every dispatch when the encoder finishes).
        let room = req.row_len().iter().all(|&p| p + 1 < req.n_tokens());
        let mut submitted = None;
        if self.submit_ahead && output == OutputKind::Argmax && room {
            self.write_step_inputs(req, &[], 1)?;
            let st = req.state_mut::<WgpuRequest>(BACKEND)?;
            let inner = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
            let (next_turn, cb, e, f) = self.encode_next_step(st, &src, bytes, true)?;
            let next_index = self.queue.submit([cb]);
            if let Some(e) = pollster::block_on(inner.pop()) {
                return Err(EngineError::Gpu {
                    what: "a decode step submitted ahead".into(),
                    message: e.to_string(),
                });
            }
            st.stats.pre_encode_s += e + f;
            submitted = Some((next_index, next_turn));
        } else if self.pre_encode {
            let st = req.state_mut::<WgpuRequest>(BACKEND)?;
            let (next_turn, cb, e, f) = self.encode_next_step(st, &src, bytes, false)?;
            st.stats.pre_encode_s += e + f;
            st.next_step = Some((output, next_turn, cb));
        }
        let st = req.state::<WgpuRequest>(BACKEND)?;
        let out = self.map_read(scope, &st.decode_staging[turn], words, Some(index))?;
        let wait = submit_t.elapsed().as_secs_f64();
        let st = req.state_mut::<WgpuRequest>(BACKEND)?;
        let dispatches = st
            .decode_record
            .as_ref()
            .map_or(0, |(_, r)| r.dispatches.len());
        let stats = &mut st.stats;
        stats.steps += 1;
        stats.dispatches = dispatches;
        stats.wait_s += wait;
        if let Some((index, staging)) = submitted {
            st.ahead = Some(Ahead {
                output,
                input: out.clone(),
                index,
                staging,
            });
        }
        req.advance();
        Ok(out)
    }

    /// Writes a decode step's inputs for the rows' positions `on` past where they are:
    /// the tokens (unless `tokens` is empty: a step submitted ahead copies them on the
    /// device), each token's (position, row, position, 0) and each row's position.
    pub(super) fn write_step_inputs(
        &self,
        req: &Request,
        tokens: &[u32],
        on: u32,
    ) -> Result<(), EngineError> {
        let pos: Vec<u32> = req.row_len().iter().map(|&p| p + on).collect();
        let info: Vec<[u32; 4]> = pos
            .iter()
            .enumerate()
            .map(|(b, &p)| [p, b as u32, p, 0])
            .collect();
        let io = &req.state::<WgpuRequest>(BACKEND)?.decode_io;
        let q = &self.queue;
        if !tokens.is_empty() {
            q.write_buffer(&io.tokens, 0, bytemuck::cast_slice(tokens));
        }
        q.write_buffer(&io.info, 0, bytemuck::cast_slice(info.as_flattened()));
        q.write_buffer(&io.row_pos, 0, bytemuck::cast_slice(&pos));
        Ok(())
    }

    /// Blocks until submission `index` (`None`: every submission so far) has run.
    pub(super) fn wait_for(&self, index: Option<wgpu::SubmissionIndex>) -> Result<(), EngineError> {
        self.device
            .poll(wgpu::PollType::Wait {
                submission_index: index,
                timeout: None,
            })
            .map(|_| ())
            .map_err(|e| EngineError::Gpu {
                what: "waiting for the GPU".into(),
                message: e.to_string(),
            })
    }

    /// One decode step's command buffer: with `feed = Some((from, to))` first a copy of
    /// the last step's tokens into this step's input (a step submitted ahead), then
    /// `dispatches` in one compute pass, then the copy of `src`'s first `bytes` into
    /// `staging`. Returns it with the seconds spent recording the pass and finishing the
    /// encoder (where wgpu validates and encodes every dispatch for the driver).
    pub(super) fn encode_step(
        &self,
        dispatches: &[Dispatch],
        src: &wgpu::Buffer,
        staging: &wgpu::Buffer,
        bytes: u64,
        feed: Option<(&wgpu::Buffer, &wgpu::Buffer)>,
    ) -> (wgpu::CommandBuffer, f64, f64) {
        let t0 = Instant::now();
        let mut encoder = self.device.create_command_encoder(&Default::default());
        if let Some((from, to)) = feed {
            encoder.copy_buffer_to_buffer(from, 0, to, 0, to.size().min(from.size()));
        }
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            for d in dispatches {
                d.encode(&mut pass);
            }
        }
        encoder.copy_buffer_to_buffer(src, 0, staging, 0, bytes);
        let encode = t0.elapsed().as_secs_f64();
        let t1 = Instant::now();
        let cb = encoder.finish();
        (cb, encode, t1.elapsed().as_secs_f64())
    }

    /// The request's recorded decode step encoded ([`Self::encode_step`]) into the next
    /// read-back buffer in turn, `feed`: its tokens copied first from the last step's
    /// output (a step submitted ahead). Returns the turn with the command buffer and its
    /// two times.
    fn encode_next_step(
        &self,
        st: &mut WgpuRequest,
        src: &wgpu::Buffer,
        bytes: u64,
        feed: bool,
    ) -> Result<(usize, wgpu::CommandBuffer, f64, f64), EngineError> {
        let turn = st.staging_turn;
        st.staging_turn = (turn + 1) % st.decode_staging.len().max(1);
        let Some((_, rec)) = &st.decode_record else {
            return Err(EngineError::Input(
                "decode dispatches were not recorded".into(),
            ));
        };
        // In place, the step reads the tokens where the last one wrote them: no copy.
        let feed =
            (feed && !st.tokens_in_place).then_some((&st.act.tokens_out, &st.decode_io.tokens));
        let (cb, e, f) =
            self.encode_step(&rec.dispatches, src, &st.decode_staging[turn], bytes, feed);
        Ok((turn, cb, e, f))
    }

    /// Maps `staging` after the submission that fills it (`index`; `None`: the latest),
    /// waits for that submission, and returns its first `words` words (the scope's
    /// validation error first, if any).
    fn map_read(
        &self,
        scope: Option<wgpu::ErrorScopeGuard>,
        staging: &wgpu::Buffer,
        words: usize,
        index: Option<wgpu::SubmissionIndex>,
    ) -> Result<Vec<u32>, EngineError> {
        let gpu = |what: &str, message: String| EngineError::Gpu {
            what: what.to_string(),
            message,
        };
        if let Some(e) = scope.and_then(|s| pollster::block_on(s.pop())) {
            return Err(gpu("a forward pass", e.to_string()));
        }
        let (tx, rx) = std::sync::mpsc::channel();
        staging.map_async(wgpu::MapMode::Read, .., move |r| {
            // The receiver lives until the poll below returns.
            let _ = tx.send(r);
        });
        self.wait_for(index)?;
        rx.recv()
            .map_err(|e| gpu("read-back", e.to_string()))?
            .map_err(|e| gpu("read-back", e.to_string()))?;
        let view = staging
            .get_mapped_range(..)
            .map_err(|e| gpu("read-back", e.to_string()))?;
        let out = bytemuck::cast_slice::<u8, u32>(&view)[..words].to_vec();
        drop(view);
        staging.unmap();
        Ok(out)
    }

    /// A buffer the host maps to read `bytes` (at least 4) copied from the device.
    pub(super) fn readback_buffer(&self, label: &str, bytes: u64) -> wgpu::Buffer {
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes.max(4),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    }

    pub(super) fn read_back(
        &self,
        scope: wgpu::ErrorScopeGuard,
        mut encoder: wgpu::CommandEncoder,
        src: &wgpu::Buffer,
        words: usize,
    ) -> Result<Vec<u32>, EngineError> {
        let bytes = (words * 4) as u64;
        let staging = self.readback_buffer("readback", bytes);
        encoder.copy_buffer_to_buffer(src, 0, &staging, 0, bytes);
        self.queue.submit([encoder.finish()]);
        self.map_read(Some(scope), &staging, words, None)
    }

    /// Checks the prompts (see [`Request::begin_prefill`]).
    pub(super) fn check_prefill(
        &self,
        req: &mut Request,
        prompts: &[Vec<u32>],
    ) -> Result<(), EngineError> {
        let capacity = req.state::<WgpuRequest>(BACKEND)?.act.capacity;
        // The pass buffers were sized at start for the prompt lengths given there; a longer
        // prompt (still within N) was refused by the pass planner as a tensor "above this
        // adapter's storage binding limit" of 134217728 bytes, for 9216 bytes (round 23).
        // Before `begin_prefill`, whose N range alone was the wrong one to say (round 43).
        check_pass_tokens(prompts, capacity, req.n_tokens())?;
        req.begin_prefill(prompts, self.config.vocab_size)
    }
}

/// Packs the prompts of `rows` into one ragged prefill pass. Each token's info holds its
/// row's index in the request (the cache row it is written to); `row_start` and `last`
/// index the pass's own packed tokens.
pub(super) fn pack_rows(prompts: &[Vec<u32>], rows: std::ops::Range<usize>) -> PackedPrefill {
    let mut tokens = Vec::new();
    let mut info = Vec::new();
    let mut row_start = vec![0u32];
    let mut last = Vec::new();
    for b in rows {
        let p = &prompts[b];
        let n = p.len() as u32;
        for (i, &tok) in p.iter().enumerate() {
            tokens.push(tok);
            info.push([i as u32, b as u32, n - 1, 0]);
        }
        row_start.push(tokens.len() as u32);
        last.push(tokens.len() as u32 - 1);
    }
    (tokens, info, row_start, last)
}
