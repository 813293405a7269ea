//! A request's device state: the sink + ring KV caches of every layer sized from the
//! plan at N, the RoPE table, activations sized for the longest pass, the decode step's
//! input buffers and its recorded dispatches.

#![warn(missing_docs)]

use wgpu::util::DeviceExt;

use super::cache::{cache_row_parts, part_work, CachePart};
use super::chunks::{self, PrefillPlan};
use super::forward::OutputKind;
use super::record::Recorded;
use super::{elem_bytes, EngineError, WgpuEngine};
use crate::lower::CacheLayout;
use crate::runtime::engine::{request_n, Request};

/// The wgpu engine's part of a [`Request`]: KV caches sized from the plan at N,
/// activations sized for the longest pass, the recorded decode step.
pub(super) struct WgpuRequest {
    pub(super) layouts: Vec<CacheLayout>,
    /// Per layer, its KV cache in parts of consecutive rows, each within the binding
    /// limit (one part when the layer fits; `cache`), with each part's decode work list.
    /// The lists cover whole segments (`WgpuAttention::decode_work` with every row at
    /// `u32::MAX`), so one list serves every step of the request and the recorded
    /// dispatches stay valid.
    pub(super) caches: Vec<Vec<CachePart>>,
    pub(super) rope: wgpu::Buffer,
    pub(super) act: Activations,
    pub(super) partials: wgpu::Buffer,
    /// Per segment of the decode attention, its items' arrival counter (a decode that
    /// merges itself; zero between steps).
    pub(super) seg_done: wgpu::Buffer,
    /// Inputs of decode steps, rewritten every step.
    pub(super) decode_io: StepIo,
    /// `decode_io.tokens` is `act.tokens_out` (`WgpuEngine::feed_in_place` when the
    /// request started): a step submitted ahead needs no copy of the last step's tokens.
    pub(super) tokens_in_place: bool,
    /// The decode step's dispatches, recorded on the first step and replayed after.
    pub(super) decode_record: Option<(OutputKind, Recorded)>,
    /// The next decode step's command buffer, encoded while the device ran the last
    /// step (`WgpuEngine::pre_encode`), and the read-back buffer it copies into.
    pub(super) next_step: Option<(OutputKind, usize, wgpu::CommandBuffer)>,
    /// Where decode steps read their result back: two, taken in turn (`staging_turn`),
    /// so a step submitted ahead copies its tokens into the one the host does not map
    /// (kept: one per step would be created and mapped every step).
    pub(super) decode_staging: Vec<wgpu::Buffer>,
    /// The read-back buffer the next encoded step copies into.
    pub(super) staging_turn: usize,
    /// The greedy step submitted while the device ran the last one
    /// (`WgpuEngine::submit_ahead`), fed on the device with that step's tokens.
    pub(super) ahead: Option<Ahead>,
    /// What the decode steps so far cost ([`WgpuEngine::decode_stats`]).
    pub(super) stats: DecodeStats,
    /// Print `stats` to stderr when the request ends (`WgpuEngineOptions::print_stats`).
    pub(super) print_stats: bool,
}

/// A greedy decode step submitted before its caller asked for it: its tokens are the
/// previous step's output, copied on the device, and it is this request's next step if
/// the caller feeds those same tokens back (`forward::forward_decode`).
pub(super) struct Ahead {
    /// The output kind it was recorded for (`Argmax`).
    pub(super) output: OutputKind,
    /// The tokens it read: the previous step's result, as returned to the caller.
    pub(super) input: Vec<u32>,
    pub(super) index: wgpu::SubmissionIndex,
    /// The read-back buffer its tokens are copied into.
    pub(super) staging: usize,
}

/// The decode steps of one request so far: how many dispatches one step records and
/// where its time goes on the host (issue 12 item 3: is a step dispatch-bound?).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct DecodeStats {
    /// Decode steps run.
    pub steps: usize,
    /// Compute dispatches in one decode step (the recorded pass; one command buffer).
    pub dispatches: usize,
    /// Seconds spent recording the steps' dispatches into a pass on the host, before
    /// submission (0 for a step whose command buffer was encoded during the previous
    /// step), all steps together.
    pub encode_s: f64,
    /// Seconds spent finishing the command encoder before submission (wgpu validates
    /// and encodes every dispatch for the driver here), all steps together.
    pub finish_s: f64,
    /// Seconds spent encoding and finishing the next step's command buffer while the
    /// device ran the current one (overlapped, not on the step's path), all steps.
    pub pre_encode_s: f64,
    /// Seconds from each step's submission to its result on the host (device work plus
    /// one round trip, plus the overlapped encoding of the next step if it takes longer
    /// than the device), all steps together; for a step submitted ahead, from the call
    /// that asked for it to its result.
    pub wait_s: f64,
    /// Steps that were already submitted when their call came (`submit_ahead`): their
    /// time between calls is not in `wait_s`, so time steps by the wall clock.
    pub ahead: usize,
}

impl DecodeStats {
    /// One line: `decode: 64 steps, 184 dispatches/step, 3.10 ms/step (0.41 ms encoding,
    /// 0.00 ms finishing, 0.52 ms encoded ahead, 0 submitted ahead), 16.8 us/dispatch`.
    /// Time per dispatch is the whole step's time over its dispatches. With steps
    /// submitted ahead, ms/step leaves out the host's time between calls.
    pub fn summary(&self) -> String {
        let steps = self.steps.max(1) as f64;
        let step_ms = (self.encode_s + self.finish_s + self.wait_s) / steps * 1e3;
        format!(
            "decode: {}, {} dispatches/step, {:.2} ms/step ({:.2} ms encoding, {:.2} ms finishing, {:.2} ms encoded ahead, {} submitted ahead), {:.1} us/dispatch",
            crate::input::counted(self.steps, "step"),
            self.dispatches,
            step_ms,
            self.encode_s / steps * 1e3,
            self.finish_s / steps * 1e3,
            self.pre_encode_s / steps * 1e3,
            self.ahead,
            step_ms * 1e3 / self.dispatches.max(1) as f64
        )
    }
}

impl Drop for WgpuRequest {
    /// With `MOA_WGPU_STATS=1`, a request that decoded prints [`DecodeStats::summary`] to
    /// stderr when it ends (benchmarks read it; the engine API has `decode_stats`).
    fn drop(&mut self) {
        if self.stats.steps > 0 && self.print_stats {
            eprintln!("{}", self.stats.summary());
        }
    }
}

/// Names the wgpu engine in [`Request`]s and their errors.
pub(super) const BACKEND: &str = "wgpu";

/// Activations of one pass (DESIGN.md §7). Whole-pass buffers hold `capacity` tokens:
/// K and V in one buffer each; `x`, `x_alt`, `h`, `q` and `attn_out` in parts of
/// `part_tokens` tokens (one part, `capacity` tokens, unless a row longer than one
/// binding holds runs in parts; decode steps and passes of several rows use part 0).
/// `qkv`, `gate_up` and `ffn_act` hold one chunk of `chunk` tokens.
pub(super) struct Activations {
    pub(super) capacity: usize,
    pub(super) chunk: usize,
    pub(super) part_tokens: usize,
    pub(super) x: Vec<wgpu::Buffer>,
    pub(super) x_alt: Vec<wgpu::Buffer>,
    pub(super) h: Vec<wgpu::Buffer>,
    pub(super) qkv: wgpu::Buffer,
    pub(super) q: Vec<wgpu::Buffer>,
    pub(super) k: wgpu::Buffer,
    pub(super) v: wgpu::Buffer,
    pub(super) attn_out: Vec<wgpu::Buffer>,
    pub(super) gate_up: wgpu::Buffer,
    pub(super) ffn_act: wgpu::Buffer,
    pub(super) last: wgpu::Buffer,
    pub(super) logits: wgpu::Buffer,
    pub(super) tokens_out: wgpu::Buffer,
    /// The two-stage argmax's (value, index) pairs: `[rows, ARGMAX_BLOCKS]` × 2 words.
    pub(super) argmax_pairs: wgpu::Buffer,
}

impl Activations {
    /// What these activations allow a prefill: passes of several rows within part 0,
    /// one row of up to `capacity` tokens in parts (`chunks::group_rows`).
    pub(super) fn limits(&self) -> chunks::TokenLimits {
        chunks::TokenLimits {
            pass: self.part_tokens,
            part: self.part_tokens,
            row: self.capacity,
            chunk: self.chunk,
        }
    }
}

/// Input buffers of one forward pass.
pub(super) struct StepIo {
    pub(super) t: usize,
    /// Rows of the pass (a prefill pass may hold a group of the request's rows).
    pub(super) rows: usize,
    pub(super) tokens: wgpu::Buffer,
    /// Per token: (position, row, last position of the row in this pass, 0).
    pub(super) info: wgpu::Buffer,
    /// Index of each row's last token in the pass.
    pub(super) last: wgpu::Buffer,
    /// Position of each row's newest token (decode attention).
    pub(super) row_pos: wgpu::Buffer,
    pub(super) identity: wgpu::Buffer,
    /// One uniform number per row for sampling.
    pub(super) uniforms: wgpu::Buffer,
    /// Prefill only: `row_start` and the longest row.
    pub(super) prefill: Option<(wgpu::Buffer, u32)>,
}

impl WgpuEngine {
    /// [`Engine::start`]: caches of every layer sized from the plan at N, the RoPE table,
    /// activations for the prompt tokens, the decode step's input buffers.
    pub(super) fn start_request(
        &self,
        prompt_lens: &[usize],
        max_new: usize,
        seed: u64,
    ) -> Result<Request, EngineError> {
        let n_tokens = request_n(prompt_lens, max_new, &self.config, &self.plan)?;
        let rows = prompt_lens.len();
        // Some of the step's dispatches take one workgroup per batch row along one
        // dimension: past the adapter's limit the first pass failed with wgpu's validation
        // error ("dispatch group size dimension ([1, 70000, 1]) must be less or equal to
        // 65535"), after the caches were allocated. Checked before any allocation.
        let max_rows = self.device.limits().max_compute_workgroups_per_dimension as usize;
        if rows > max_rows {
            return Err(EngineError::Input(format!(
                "{rows} rows: this adapter dispatches at most {max_rows} rows a batch (max_compute_workgroups_per_dimension): allowed 1..={max_rows}"
            )));
        }
        let hd = self.config.head_dim;
        let d = hd as u64;
        let s = elem_bytes(self.storage);
        let layouts = self.module.cache_layouts(n_tokens);
        // Prefill passes and chunks sized from the binding limit (`chunks`): the prompts
        // may be shorter than `prompt_lens`, never longer, so this plan bounds them.
        let plan = self.prefill_plan(prompt_lens)?;
        let mut caches = Vec::with_capacity(layouts.len());
        let mut kv_bytes = 0;
        let mut max_items = 1;
        let whole = vec![u32::MAX; rows];
        for (i, layout) in layouts.iter().enumerate() {
            let row_bytes = u64::from(layout.row_slots) * d * s;
            kv_bytes += 2 * rows as u64 * row_bytes;
            // Parts of whole rows within the binding limit (`cache`); one row over it is
            // refused, naming the layer.
            let name = format!("k_cache.{i} ({} slots × {hd} per row)", layout.row_slots);
            let parts = cache_row_parts(&name, rows, row_bytes, self.max_binding)?;
            let work = match (self.decode_chunk, self.decode_resident) {
                (Some(slots), _) => self.attention.decode_work_chunked(layout, &whole, slots),
                (None, Some(resident)) => self.attention.decode_work_chunked(
                    layout,
                    &whole,
                    crate::runtime::worklist::choose_chunk(
                        layout,
                        &whole,
                        self.attention.decode_tile(),
                        resident,
                    ),
                ),
                (None, None) => self.attention.decode_work(layout, &whole),
            };
            max_items = max_items.max(work.n_items());
            let mut layer = Vec::with_capacity(parts.len());
            for r in parts {
                let label = |kv: &str| format!("{kv}_cache.{i}[rows {}..{}]", r.start, r.end);
                let bytes = r.len() as u64 * row_bytes;
                let flat = part_work(&work, self.config.kv_heads, &r);
                layer.push(CachePart {
                    k: self.buffer(&label("k"), bytes)?,
                    v: self.buffer(&label("v"), bytes)?,
                    work: self.storage_u32("decode_work", &flat),
                    n_items: (flat.len() / 8) as u32,
                    rows: r,
                });
            }
            caches.push(layer);
        }
        // cos/sin per (position, pair), computed in f64 like the CPU reference, from the
        // one RoPE frequency rule (scaling included).
        let inv_freq = self.config.rope_inv_freq();
        let mut table = Vec::with_capacity(n_tokens as usize * hd);
        for p in 0..n_tokens as usize {
            for &inv in &inv_freq {
                let a = p as f64 * inv;
                table.push(a.cos() as f32);
                table.push(a.sin() as f32);
            }
        }
        let rope = self
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("rope"),
                contents: bytemuck::cast_slice(&table),
                usage: wgpu::BufferUsages::STORAGE,
            });
        let act = self.activations(
            plan.pass_tokens.max(rows),
            plan.chunk_tokens,
            plan.part_tokens,
            rows,
        )?;
        let partials = self.buffer(
            "partials",
            (self.attention.partials_len(max_items).max(1) * 4) as u64,
        )?;
        // A decode that merges itself needs its partials empty and its per-segment
        // counters zero before its first step (`WgpuAttention::decode_scratch`); each step
        // leaves them so.
        let seg_done = self.buffer("seg_done", (rows * self.config.kv_heads * 4) as u64)?;
        if self.attention.decode_fused() {
            let empty = vec![
                crate::codegen::wgsl::DECODE_PARTIAL_EMPTY;
                self.attention.partials_len(max_items).max(1)
            ];
            self.queue
                .write_buffer(&partials, 0, bytemuck::cast_slice(&empty));
        }
        let zeros = vec![0u32; rows];
        let mut decode_io = self.step_io(
            &zeros,
            &vec![[0u32; 4]; rows],
            &(0..rows as u32).collect::<Vec<_>>(),
            None,
        );
        if self.feed_in_place {
            // The step reads the tokens the last step's argmax wrote, where the host also
            // writes those of a step run on demand (`forward::write_step_inputs`).
            // (Both start zeroed, as wgpu makes every buffer.)
            decode_io.tokens = act.tokens_out.clone();
        }
        let state = WgpuRequest {
            layouts,
            caches,
            rope,
            act,
            partials,
            seg_done,
            decode_io,
            tokens_in_place: self.feed_in_place,
            decode_record: None,
            next_step: None,
            decode_staging: Vec::new(),
            staging_turn: 0,
            ahead: None,
            stats: DecodeStats::default(),
            print_stats: self.options.print_stats,
        };
        Ok(Request::new(BACKEND, rows, n_tokens, kv_bytes, seed, state))
    }

    /// [`chunks::plan_prefill`] for this engine's model, storage type and limits.
    pub(super) fn prefill_plan(&self, prompt_lens: &[usize]) -> Result<PrefillPlan, EngineError> {
        chunks::plan_prefill(
            &self.config,
            self.storage,
            prompt_lens,
            self.max_binding,
            u64::from(self.device.limits().min_storage_buffer_offset_alignment),
            self.device.limits().max_compute_workgroups_per_dimension,
        )
    }

    /// Activations for passes of up to `tokens` tokens (and `rows` rows), the per-token
    /// products run over chunks of `chunk` tokens, `x`, `x_alt`, `h`, `q` and `attn_out`
    /// in parts of `part_tokens` tokens (the last part rounded up to 64 tokens, the
    /// matrix-unit attention's query tile, within `part_tokens`; part 0 also holds at
    /// least `rows` tokens, a decode step's, while the parts stay `part_tokens` apart).
    pub(super) fn activations(
        &self,
        tokens: usize,
        chunk: usize,
        part_tokens: usize,
        rows: usize,
    ) -> Result<Activations, EngineError> {
        let part_tokens = part_tokens.clamp(1, tokens.max(1));
        let chunk = chunk.clamp(1, part_tokens);
        let c = &self.config;
        let f = 4u64;
        let s = elem_bytes(self.storage);
        let t = tokens as u64;
        // Zeroed keys past the pass for the matrix-unit prefill's 16-key V blocks.
        let kv_t = t + super::chunks::KV_PAD_TOKENS as u64;
        let ct = chunk as u64;
        let heads = (c.q_heads + 2 * c.kv_heads) as u64;
        let hd = c.head_dim as u64;
        // Each part's tokens: one part of `tokens` when it fits, else whole parts and a
        // last part rounded up to 64 tokens (never past a whole part).
        let mut part_lens: Vec<u64> = (0..tokens.max(1))
            .step_by(part_tokens)
            .map(|p0| {
                let n = part_tokens.min(tokens.max(1) - p0);
                let n = if part_tokens < tokens {
                    n.next_multiple_of(64).min(part_tokens)
                } else {
                    n
                };
                n as u64
            })
            .collect();
        // A decode step's `rows` tokens live in part 0; parts are still indexed
        // `part_tokens` apart (`record::part_at`), so a larger part 0 only has room to spare.
        // (Parts sized `rows` apart would misalign the token ids' offsets. In practice the
        // rows' logits, `vocab` f32 a row, outgrow a binding long before rows outnumber a
        // part's tokens.)
        part_lens[0] = part_lens[0].max(rows as u64);
        let parted = |name: &str, bytes_per_token: u64| -> Result<Vec<wgpu::Buffer>, EngineError> {
            let many = part_lens.len() > 1;
            part_lens
                .iter()
                .enumerate()
                .map(|(i, &n)| {
                    let label = if many {
                        format!("{name}[part {i}]")
                    } else {
                        name.to_string()
                    };
                    self.buffer(&label, n * bytes_per_token)
                })
                .collect()
        };
        Ok(Activations {
            capacity: tokens,
            chunk,
            part_tokens,
            x: parted("x", c.hidden_size as u64 * f)?,
            x_alt: parted("x_alt", c.hidden_size as u64 * f)?,
            h: parted("h", c.hidden_size as u64 * f)?,
            qkv: self.buffer("qkv", ct * heads * hd * f)?,
            q: parted("q", c.q_heads as u64 * hd * s)?,
            k: self.buffer("k", kv_t * c.kv_heads as u64 * hd * s)?,
            v: self.buffer("v", kv_t * c.kv_heads as u64 * hd * s)?,
            attn_out: parted("attn_out", c.q_heads as u64 * hd * s)?,
            gate_up: self.buffer("gate_up", ct * 2 * c.ffn_size as u64 * f)?,
            ffn_act: self.buffer("ffn_act", ct * c.ffn_size as u64 * f)?,
            last: self.buffer("last", rows as u64 * c.hidden_size as u64 * f)?,
            logits: self.buffer("logits", rows as u64 * c.vocab_size as u64 * f)?,
            tokens_out: self.buffer("tokens_out", rows as u64 * 4)?,
            argmax_pairs: self.buffer(
                "argmax_pairs",
                rows as u64 * u64::from(self.argmax_blocks_max()) * 8,
            )?,
        })
    }

    /// Device buffers for one pass's inputs (tokens, per-token info, each row's last
    /// token, positions, sampling uniforms), writable so decode steps reuse them.
    pub(super) fn step_io(
        &self,
        tokens: &[u32],
        info: &[[u32; 4]],
        last: &[u32],
        row_start: Option<&[u32]>,
    ) -> StepIo {
        // Ids were checked against the vocabulary by the callers (`engine::check_ids`); the clamp
        // only keeps the embedding gather in bounds for the zero-filled decode buffers.
        let vocab = self.config.vocab_size as u32;
        let clamped: Vec<u32> = tokens.iter().map(|&x| x.min(vocab - 1)).collect();
        let row_pos: Vec<u32> = last.iter().map(|&i| info[i as usize][0]).collect();
        let identity: Vec<u32> = (0..tokens.len() as u32).collect();
        StepIo {
            t: tokens.len(),
            rows: last.len(),
            tokens: self.storage_u32("tokens", &clamped),
            info: self.storage_u32("tok_info", info.as_flattened()),
            last: self.storage_u32("last_index", last),
            row_pos: self.storage_u32("row_pos", &row_pos),
            identity: self.storage_u32("rows", &identity),
            uniforms: self.storage_u32("uniforms", &vec![0; last.len()]),
            prefill: row_start.map(|r| {
                let max_len = r.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0);
                (self.storage_u32("row_start", r), max_len)
            }),
        }
    }
}
