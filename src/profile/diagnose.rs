//! Diagnosis of one sample against one plan (`moa diagnose`, docs/CALIBRATION.md
//! "Diagnosis"): which heads carry the answer, what the influence profile makes of them,
//! and whether the plan's span of each such head reaches the key.
//!
//! For every layer and query head, on the answer rows (the rows that predict the response
//! tokens, `response.start − 1 .. response.end − 1`):
//! - `attn_mass`: the attention mass on the key tokens, averaged over the answer rows;
//! - `key_influence`: Σ |ΔL_ij| over answer rows × key tokens, the per-entry influence the
//!   profile sums into its tiles (`influence::influence_row`);
//! - `key_first_order`: the first-order loss change of removing the key tokens from the
//!   answer rows as one set (row renormalised once): `(A_S·s − s_S) / (1 − A_S)` per row,
//!   with `A_S = Σ_{j∈S} A_ij`, `s = Σ_n G_in A_in`, `s_S = Σ_{j∈S} G_ij A_ij`;
//! - `ablation`: the true loss change of that removal (a forward pass with those entries
//!   zeroed and the rows renormalised), for the heads with the most key mass;
//! - `head_influence` / `dropped_share`: the head's whole influence in this sample and the
//!   share of it that lies outside the plan's window at N;
//! - `span`, `reaches`: the plan's span of the head at N and whether the first answer row
//!   keeps the first key token.

#![warn(missing_docs)]

use std::fmt::Write as _;
use std::ops::Range;

use super::influence::{add_head_cuts, cut_loss, influence_row};

/// Block of the cut influence computed here (moa's default tile).
const BLOCK: usize = 64;
use super::{walk_backward, GradModel, HeadMask, LossSpan, ProfileError};
use crate::calib::CalibSample;
use crate::plan::{HeadWindow, Plan, Rule, BETA_DEN};

/// What the diagnosis found for one head.
#[derive(Clone, Debug, PartialEq)]
pub struct HeadFinding {
    /// Layer index (0-based).
    pub layer: usize,
    /// Query head index within the layer (0-based).
    pub q_head: usize,
    /// Attention mass on the key tokens, averaged over the answer rows, in [0, 1].
    pub attn_mass: f64,
    /// Σ |ΔL_ij| over answer rows × key tokens (the per-entry influence of `profile::influence`, docs/CALIBRATION.md).
    pub key_influence: f64,
    /// First-order loss change (nats) of removing the key tokens from the answer rows as one
    /// set (the formula of the module docs).
    pub key_first_order: f64,
    /// The true loss change (nats) of that removal, measured for the heads with the most key
    /// mass; `None` where not measured.
    pub ablation: Option<f64>,
    /// The head's whole influence (Σ |ΔL_ij| over its causal entries) in this sample.
    pub head_influence: f64,
    /// Share of `head_influence` outside the plan's window at N, in [0, 1].
    pub dropped_share: f64,
    /// Cut influence of the plan's window for this head (what `moa optimize` charges the
    /// rule when the profile has cuts): Σ over rows of |ΔL| of removing everything the
    /// window drops, at once.
    pub cut_plan: f64,
    /// The same, signed (rows' effects may cancel): what the optimizer charges.
    pub cut_plan_signed: f64,
    /// The plan's span of the head at N, in tokens (sink included).
    pub span: u32,
    /// The first answer row keeps the first key token under the plan ([`reaches`]).
    pub reaches: bool,
    /// Loss under the plan minus loss under the plan with this head dense (what the
    /// plan's cut of this head costs, with every other head cut as planned).
    pub restore: Option<f64>,
}

/// The diagnosis of one sample.
#[derive(Clone, Debug, PartialEq)]
pub struct Diagnosis {
    /// The sample's [`CalibSample::id`].
    pub sample_id: String,
    /// The sample's length T, in tokens (prompt and response).
    pub n_tokens: usize,
    /// N at which the plan's spans are taken.
    pub n_eval: u32,
    /// Token positions of the key in the prompt ([`key_range`]).
    pub key: Range<usize>,
    /// Rows whose logits predict the response.
    pub answer_rows: Range<usize>,
    /// Response loss (mean cross-entropy, nats) under dense attention.
    pub dense_loss: f64,
    /// Response loss with every head restricted to the plan's window at N.
    pub plan_loss: f64,
    /// Response loss with every head restricted to a uniform window of span N/2.
    pub uniform_loss: f64,
    /// Per layer: plan loss minus the loss with this layer dense (the rest as planned).
    pub layer_restore: Vec<Option<f64>>,
    /// Every head, by decreasing `attn_mass`.
    pub heads: Vec<HeadFinding>,
    /// Σ |ΔL| per layer in this sample (what the profile adds for it).
    pub layer_influence: Vec<f64>,
}

/// Where the key lies in a sample's prompt: `key_tokens` tokens from the needle's first
/// token (pass key: the needle sentence; quote: the quoted sentence).
pub fn key_range(sample: &CalibSample, key_tokens: usize) -> Result<Range<usize>, String> {
    let start = sample.expected.needle_token.ok_or_else(|| {
        format!(
            "sample `{}` records no needle position (expected.needle_token): diagnosis needs a pass-key or quote sample",
            sample.id
        )
    })?;
    let end = (start + key_tokens.max(1)).min(sample.prompt_tokens.len());
    if start >= end {
        return Err(format!(
            "sample `{}`: needle_token {start} is outside its {}-token prompt",
            sample.id,
            sample.prompt_tokens.len()
        ));
    }
    Ok(start..end)
}

/// How much forward-pass work the diagnosis does beyond its backward walk.
#[derive(Clone, Copy, Debug)]
pub struct DiagnoseOptions {
    /// Heads (by key mass) whose key removal is measured by a forward pass.
    pub ablate: usize,
    /// Heads (by key mass, among those the plan does not reach) whose restore gain is
    /// measured.
    pub restore_heads: usize,
    /// Measure every layer's restore gain (one forward pass per layer).
    pub restore_layers: bool,
}

/// Runs the diagnosis: one backward walk (A and G of every head), then forward passes
/// under the plan, a uniform window and the ablations/restorations of `opts`.
pub fn diagnose(
    model: &GradModel,
    sample: &CalibSample,
    key: Range<usize>,
    plan: &Plan,
    n_eval: u32,
    opts: DiagnoseOptions,
) -> Result<Diagnosis, ProfileError> {
    sample.check().map_err(ProfileError::Invalid)?;
    let tokens = sample.tokens();
    let r = sample.response_range();
    let rows = r.start - 1..r.end - 1;
    let span = LossSpan {
        tokens: &tokens,
        response: r.clone(),
    };
    let t = tokens.len();
    let c = &model.config;
    let mut heads = Vec::new();
    let mut layer_influence = vec![0.0; c.n_layers];
    let mut row = vec![0.0f64; t];
    let sink = plan.span().sink_tokens as usize;
    let dense_loss = walk_backward(model, &span, &mut |l, attn| {
        for h in 0..c.q_heads {
            let (a, g) = (&attn.probs[h], &attn.grads[h]);
            let window = plan.window(l, h, n_eval);
            let (mut total, mut dropped) = (0.0f64, 0.0f64);
            let (mut key_inf, mut key_fo, mut mass) = (0.0f64, 0.0f64, 0.0f64);
            for i in 0..t {
                let (ra, rg) = (&a[i * t..(i + 1) * t], &g[i * t..(i + 1) * t]);
                influence_row(i, ra, rg, &mut row);
                for (j, v) in row.iter().take(i + 1).enumerate() {
                    total += v.abs();
                    if !window.keeps(i as u64, j as u64) {
                        dropped += v.abs();
                    }
                }
                if rows.contains(&i) {
                    let keys = key.start..key.end.min(i + 1);
                    let a_s: f64 = keys.clone().map(|j| f64::from(ra[j])).sum();
                    let s_s: f64 = keys
                        .clone()
                        .map(|j| f64::from(rg[j]) * f64::from(ra[j]))
                        .sum();
                    let s: f64 = (0..=i).map(|n| f64::from(rg[n]) * f64::from(ra[n])).sum();
                    mass += a_s;
                    key_inf += keys.map(|j| row[j].abs()).sum::<f64>();
                    if 1.0 - a_s > 1e-9 {
                        key_fo += (a_s * s - s_s) / (1.0 - a_s);
                    }
                }
            }
            layer_influence[l] += total;
            heads.push(HeadFinding {
                layer: l,
                q_head: h,
                attn_mass: mass / rows.len() as f64,
                key_influence: key_inf,
                key_first_order: key_fo,
                ablation: None,
                head_influence: total,
                dropped_share: if total > 0.0 { dropped / total } else { 0.0 },
                cut_plan: cut_of(a, g, t, window.window, sink, true),
                cut_plan_signed: cut_of(a, g, t, window.window, sink, false),
                span: window.span,
                reaches: window.keeps(rows.start as u64, key.start as u64),
                restore: None,
            });
        }
    })?;
    heads.sort_by(|x, y| y.attn_mass.total_cmp(&x.attn_mass));
    let planned = |l: usize, h: usize| Some(plan.window(l, h, n_eval));
    let plan_loss = model.loss_windows(&span, &planned, &[])?;
    let half = Rule {
        alpha: 0,
        beta_num: BETA_DEN / 2,
    }
    .span(n_eval, &plan.span().params());
    let uniform = HeadWindow::new(half, plan.span().sink_tokens);
    let uniform_loss = model.loss_windows(&span, &|_, _| Some(uniform), &[])?;
    let mut layer_restore = vec![None; c.n_layers];
    if opts.restore_layers {
        for (l, slot) in layer_restore.iter_mut().enumerate() {
            let w = |ll: usize, h: usize| if ll == l { None } else { planned(ll, h) };
            *slot = Some(plan_loss - model.loss_windows(&span, &w, &[])?);
        }
    }
    for f in heads
        .iter_mut()
        .filter(|f| !f.reaches)
        .take(opts.restore_heads)
    {
        let (fl, fh) = (f.layer, f.q_head);
        let w = |l: usize, h: usize| {
            if (l, h) == (fl, fh) {
                None
            } else {
                planned(l, h)
            }
        };
        f.restore = Some(plan_loss - model.loss_windows(&span, &w, &[])?);
    }
    for f in heads.iter_mut().take(opts.ablate) {
        let mask = HeadMask {
            layer: f.layer,
            q_head: f.q_head,
            rows: rows.clone(),
            keys: key.clone(),
        };
        f.ablation = Some(model.loss_masked(&span, &[mask])? - dense_loss);
    }
    Ok(Diagnosis {
        sample_id: sample.id.clone(),
        n_tokens: t,
        n_eval,
        key,
        answer_rows: rows,
        dense_loss,
        plan_loss,
        uniform_loss,
        layer_restore,
        heads,
        layer_influence,
    })
}

/// The cut influence of a window for one head (`abs`: per-row absolute values).
fn cut_of(a: &[f32], g: &[f32], t: usize, window: u32, sink: usize, abs: bool) -> f64 {
    let nb = t.div_ceil(BLOCK);
    let mut cuts = vec![0.0f64; nb * nb];
    add_head_cuts(a, g, t, BLOCK, nb, sink, abs, &mut cuts);
    let col: Vec<f64> = (0..nb)
        .map(|d| (0..nb).map(|qb| cuts[qb * nb + d]).sum())
        .collect();
    cut_loss(&col, window, BLOCK as u32)
}

/// Would a head with this span reach the key from the first answer row?
pub fn reaches(span: u32, sink: u32, answer_row: usize, key_start: usize) -> bool {
    HeadWindow::new(span, sink).keeps(answer_row as u64, key_start as u64)
}

/// The report: the `top` heads by key mass, then per-layer influence.
pub fn report_text(d: &Diagnosis, top: usize, sink: u32) -> String {
    let mut s = String::new();
    let dist = d.answer_rows.start.saturating_sub(d.key.start);
    let _ = writeln!(
        s,
        "sample {}: {} tokens, key at tokens {}..{} ({} tokens before the first answer row {}), plan spans at N = {}, dense response loss {:.4}",
        d.sample_id, d.n_tokens, d.key.start, d.key.end, dist, d.answer_rows.start, d.n_eval, d.dense_loss
    );
    let _ = writeln!(
        s,
        "response loss: dense {:.4}, plan {:.4} ({:+.4}), uniform N/2 window {:.4} ({:+.4})",
        d.dense_loss,
        d.plan_loss,
        d.plan_loss - d.dense_loss,
        d.uniform_loss,
        d.uniform_loss - d.dense_loss
    );
    let total: f64 = d.layer_influence.iter().sum();
    let key_total: f64 = d.heads.iter().map(|h| h.key_influence).sum();
    let _ = writeln!(
        s,
        "influence: all heads {total:.4}, answer rows → key {key_total:.4} ({:.2}% of it)",
        100.0 * key_total / total.max(1e-30)
    );
    let _ = writeln!(
        s,
        "a uniform N/2 window {} the key",
        if reaches(
            (d.n_eval / 2).max(1),
            sink,
            d.answer_rows.start,
            d.key.start
        ) {
            "reaches"
        } else {
            "does not reach"
        }
    );
    let _ = writeln!(
        s,
        "layer\thead\tkey_mass\tkey_infl\tkey_1st_order\tablation\thead_infl\tdropped_by_plan\tcut_by_plan\tsigned_cut\tspan\treaches\trestore_gain"
    );
    for h in d.heads.iter().take(top) {
        let _ = writeln!(
            s,
            "{}\t{}\t{:.3}\t{:.4}\t{:+.4}\t{}\t{:.4}\t{:.1}%\t{:.4}\t{:+.4}\t{}\t{}\t{}",
            h.layer,
            h.q_head,
            h.attn_mass,
            h.key_influence,
            h.key_first_order,
            h.ablation.map_or("-".into(), |v| format!("{v:+.4}")),
            h.head_influence,
            100.0 * h.dropped_share,
            h.cut_plan,
            h.cut_plan_signed,
            h.span,
            if h.reaches { "yes" } else { "NO" },
            h.restore.map_or("-".into(), |v| format!("{v:+.4}")),
        );
    }
    let _ = writeln!(
        s,
        "layer\tinfluence\tshare\tdropped_by_plan\tcut_by_plan\tsigned_cut\trestore_gain"
    );
    for (l, v) in d.layer_influence.iter().enumerate() {
        let of = |f: &dyn Fn(&HeadFinding) -> f64| -> f64 {
            d.heads.iter().filter(|h| h.layer == l).map(f).sum()
        };
        let _ = writeln!(
            s,
            "{l}\t{v:.4}\t{:.1}%\t{:.4}\t{:.4}\t{:+.4}\t{}",
            100.0 * v / total.max(1e-30),
            of(&|h| h.dropped_share * h.head_influence),
            of(&|h| h.cut_plan),
            of(&|h| h.cut_plan_signed),
            d.layer_restore[l].map_or("-".into(), |g| format!("{g:+.4}"))
        );
    }
    s
}
