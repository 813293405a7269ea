//! `moa optimize`: influence profiles → plans (one TOML per Pareto point) + a summary.

use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use moa::optimize::{optimize, CandidateGrid, Method, Objective, OptimizeConfig, SolveOptions};
use moa::plan::{Plan, SpanSection};
use moa::profile::InfluenceProfile;

use crate::args::OptimizeArgs;

fn parse_band(args: &OptimizeArgs) -> anyhow::Result<(f64, f64)> {
    match (&args.band, args.density) {
        (Some(band), _) => {
            let parts: Vec<&str> = band.split(',').map(str::trim).collect();
            let [lo, hi] = parts.as_slice() else {
                bail!("--band `{band}` must be two numbers `lo,hi`, e.g. 0.45,0.5");
            };
            let lo: f64 = lo
                .parse()
                .with_context(|| format!("--band: `{lo}` is not a number"))?;
            let hi: f64 = hi
                .parse()
                .with_context(|| format!("--band: `{hi}` is not a number"))?;
            // The optimizer's own refusal named four flags for this one (round 40).
            if !(lo.is_finite() && hi.is_finite() && 0.0 <= lo && lo <= hi && hi <= 1.0) {
                bail!(
                    "--band {band} is out of range: allowed `lo,hi` with 0 ≤ lo ≤ hi ≤ 1 (KV \
                     densities: the plan's share of the dense KV cache)"
                );
            }
            if let Some(d) = args.density {
                if (d - hi).abs() > 1e-12 {
                    bail!("--density {d} disagrees with the upper end of --band {band}");
                }
            }
            Ok((lo, hi))
        }
        // Upstream's --latency_lower_bound_ratio 0.9: the plan may not be much sparser
        // than asked, or it would buy loss for nothing.
        (None, Some(d)) => {
            if !(d.is_finite() && d > 0.0 && d <= 1.0) {
                bail!(
                    "--density {d} is out of range: a KV density (the plan's share of the \
                     dense KV cache) in (0, 1]"
                );
            }
            // 0.9 · 0.55 is 0.49500000000000005 in f64, which the band's messages and the
            // plans' notes printed as it is; 12 decimals change no plan.
            Ok(((0.9 * d * 1e12).round() / 1e12, d))
        }
        (None, None) => bail!("give --density D (band [0.9·D, D]) or --band lo,hi"),
    }
}

/// Checks the settings that need no profile (band, time limit, mip gap, extra lengths,
/// rules per layer, min β) and returns the density band: run before the profiles are
/// read, and by `moa pipeline` before its calibration.
pub fn check_settings(args: &OptimizeArgs) -> anyhow::Result<(f64, f64)> {
    let density_band = parse_band(args)?;
    // `Duration::from_secs_f64` panics past ~1.8e19 s: a finite but huge limit
    // (`--time-limit 1e300`) passed the old check and aborted the run.
    if !(args.time_limit > 0.0 && args.time_limit <= MAX_TIME_LIMIT_S) {
        bail!(
            "--time-limit {:?} is out of range: allowed a number of seconds in (0, {MAX_TIME_LIMIT_S:e}]",
            args.time_limit
        );
    }
    // 0 was taken as 1 without a word (round 24).
    if args.pareto_intervals == Some(0) {
        bail!(
            "--pareto-intervals 0 is out of range: allowed 1 or more (the steps each loss range \
             of the payoff table is cut into; the run stops at --time-limit however many)"
        );
    }
    // With --objective-length there is one solve and no ε grid: the steps were ignored in
    // silence (round 39).
    if let (Some(k), [first, ..]) = (args.pareto_intervals, args.objective_lengths.as_slice()) {
        bail!(
            "--pareto-intervals {k} is for the Pareto set over every profiled length, but \
             --objective-length {first} asks for one solve of that length's loss: give one \
             of the two"
        );
    }
    if let Some(b) = args.min_beta {
        if !(0.0..=1.0).contains(&b) {
            anyhow::bail!("--min-beta {b} is outside 0 to 1 (a share of N)");
        }
    }
    // Each flag's own refusal, with its range: the optimizer's `validate` below opened
    // with a line naming --density/--band, --mip-gap, --extra-length and
    // --max-rules-per-layer together, whichever one was at fault (round 40).
    if !(args.mip_gap.is_finite() && (0.0..=1.0).contains(&args.mip_gap)) {
        bail!(
            "--mip-gap {} is out of range: allowed 0 to 1 (a relative optimality gap)",
            args.mip_gap
        );
    }
    if let Some(n) = args
        .extra_lengths
        .iter()
        .find(|&&n| n == 0 || n > moa::optimize::MAX_LENGTH)
    {
        bail!(
            "--extra-length {n} is out of range: allowed 1..={} tokens",
            moa::optimize::MAX_LENGTH
        );
    }
    if args.max_rules_per_layer == 0 {
        bail!("--max-rules-per-layer 0 is out of range: allowed 1 or more");
    }
    // Whatever the optimizer checks beyond the flags above.
    OptimizeConfig {
        density_band,
        extra_lengths: args.extra_lengths.clone(),
        max_rules_per_layer: args.max_rules_per_layer,
        solve: SolveOptions {
            mip_gap: args.mip_gap,
            ..SolveOptions::default()
        },
        ..OptimizeConfig::default()
    }
    .validate()?;
    Ok(density_band)
}

/// The extra constrained lengths of a run whose profiles are at `lengths`: `--extra-length`,
/// or twice the longest profile.
fn extra_lengths(args: &OptimizeArgs, lengths: &[u32]) -> Vec<u32> {
    if args.extra_lengths.is_empty() {
        let longest = lengths.iter().copied().max().unwrap_or(0);
        vec![longest.saturating_mul(2)]
    } else {
        args.extra_lengths.clone()
    }
}

/// The candidate grid of a run whose profiles are at `lengths` (sorted): upstream's,
/// unless --max-alpha or --min-beta narrows it (`None`: the optimizer's default).
fn candidate_grid(args: &OptimizeArgs, lengths: &[u32]) -> Option<CandidateGrid> {
    let min_beta_num = args
        .min_beta
        .map_or(0, |b| (b * f64::from(moa::plan::BETA_DEN)).round() as u32);
    let (&first, &last) = (lengths.first()?, lengths.last()?);
    (args.max_alpha.is_some() || min_beta_num > 0).then(|| {
        let longest = extra_lengths(args, lengths)
            .into_iter()
            .chain([last])
            .max()
            .unwrap_or(0);
        CandidateGrid {
            max_alpha: args.max_alpha,
            min_beta_num,
            ..CandidateGrid::upstream(first, last, longest)
        }
    })
}

/// Whether the density band can be met at the lengths a run with profiles at
/// `profile_lengths` constrains, from the lengths alone (`moa pipeline` asks before it
/// calibrates). `span` is the plan's span section the run will use.
pub fn check_reach(
    args: &OptimizeArgs,
    profile_lengths: &[u32],
    span: SpanSection,
) -> anyhow::Result<()> {
    let mut lens = profile_lengths.to_vec();
    lens.sort_unstable();
    lens.dedup();
    let cfg = OptimizeConfig {
        span,
        density_band: parse_band(args)?,
        extra_lengths: extra_lengths(args, &lens),
        grid: candidate_grid(args, &lens),
        ..OptimizeConfig::default()
    };
    moa::optimize::check_density_reach(&cfg, &lens)?;
    Ok(())
}

/// The sizes that make a model's shape for a plan: layers, query heads, KV heads, head
/// size (the name and the context may differ).
fn shape_of(m: &moa::plan::ModelShape) -> (u32, u32, u32, u32) {
    (m.layers, m.q_heads, m.kv_heads, m.head_dim)
}

/// A shape as the refusals print it, e.g. `4 layers × 4 query heads (2 KV) of 16`.
fn shape_str(m: &moa::plan::ModelShape) -> String {
    format!(
        "{} layers × {} query heads ({} KV) of {}",
        m.layers, m.q_heads, m.kv_heads, m.head_dim
    )
}

/// `--pareto-intervals` when not given: upstream's 4 steps per loss range.
const DEFAULT_PARETO_INTERVALS: usize = 4;

/// The longest `--time-limit`, in seconds (about 31 years): any longer is no limit.
const MAX_TIME_LIMIT_S: f64 = 1e9;

pub fn run(args: OptimizeArgs) -> anyhow::Result<ExitCode> {
    let density_band = check_settings(&args)?;
    super::check_output_folder("-o", &args.output)?;
    super::check_distinct_files("--profile", &args.profiles)?;
    let mut profiles = Vec::with_capacity(args.profiles.len());
    let mut names = Vec::with_capacity(args.profiles.len());
    for path in &args.profiles {
        profiles.push(InfluenceProfile::load(path)?);
        names.push(path.display().to_string());
    }
    let (profiles, names) = mean_by_length(profiles, names)?;
    let (model, span) = match &args.plan_shape {
        Some(p) => {
            let plan = Plan::load(p).with_context(|| format!("--plan-shape `{}`", p.display()))?;
            // The optimizer's "model shape mismatch: `F` is for … but the plan shape is …"
            // named neither flag (round 40).
            if let Some((f, q)) = names
                .iter()
                .zip(&profiles)
                .find(|(_, q)| shape_of(&q.model) != shape_of(plan.model()))
            {
                bail!(
                    "--plan-shape `{}` is for {} but --profile `{f}` is for {}: allowed a plan \
                     of the profiles' shape",
                    p.display(),
                    shape_str(plan.model()),
                    shape_str(&q.model)
                );
            }
            // The profiles' cut influence is the sink's (round 43: a plan of another sink
            // was "invalid optimizer settings: … profile again with that sink", a profile
            // `moa profile` cannot make, naming no flag).
            if let Some((f, c)) = names
                .iter()
                .zip(&profiles)
                .find_map(|(f, q)| q.cuts.as_ref().map(|c| (f, c)))
                .filter(|(_, c)| c.sink_tokens != plan.span().sink_tokens)
            {
                bail!(
                    "--plan-shape `{}` has span.sink_tokens = {}, but --profile `{f}` holds \
                     cut influence for a {}-token sink, the one `moa profile` takes: allowed a \
                     plan with sink_tokens = {}",
                    p.display(),
                    plan.span().sink_tokens,
                    c.sink_tokens,
                    c.sink_tokens
                );
            }
            (Some(plan.model().clone()), plan.span().clone())
        }
        None => (None, SpanSection::default()),
    };
    let mut lens: Vec<u32> = profiles.iter().map(|p| p.n_tokens).collect();
    lens.sort_unstable();
    // The optimizer's "objective length N = 999 is not a profiled length" named no flag
    // (round 39).
    if let Some(n) = args.objective_lengths.iter().find(|n| !lens.contains(n)) {
        bail!(
            "--objective-length {n} is not a length of the given profiles: allowed {} (the \
             N of each --profile file, in tokens)",
            lens.iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let extra_lengths = extra_lengths(&args, &lens);
    let method = match args.method.as_str() {
        "milp" => Method::Milp,
        "lagrangian" => Method::Lagrangian,
        _ => Method::Auto,
    };
    let grid = candidate_grid(&args, &lens);
    let near = match (&args.near, args.max_changes) {
        (Some(p), Some(k)) => Some(moa::optimize::Near {
            plan: Plan::load(p).with_context(|| format!("--near `{}`", p.display()))?,
            max_changes: k,
        }),
        _ => None,
    };
    // The shape the plans take (--plan-shape's, else the profiles'): a near plan of
    // another one was "model shape mismatch: the near plan is for …", naming no flag
    // (round 40). Profiles that disagree among themselves are left to the optimizer,
    // which names the two files.
    let target = model.as_ref().unwrap_or(&profiles[0].model);
    if let (Some(n), Some(p)) = (&near, &args.near) {
        if profiles
            .iter()
            .all(|q| shape_of(&q.model) == shape_of(target))
            && shape_of(n.plan.model()) != shape_of(target)
        {
            bail!(
                "--near `{}` is for {} but the {} for {}: allowed a plan of that shape",
                p.display(),
                shape_str(n.plan.model()),
                if args.plan_shape.is_some() {
                    "profiles and --plan-shape are"
                } else {
                    "profiles are"
                },
                shape_str(target)
            );
        }
    }
    // `--max-changes 0` returned the near plan unchanged and `--max-changes 100` of 16
    // units bound nothing, both without a word, where `moa pipeline` refuses them (round
    // 46): the same range here, the units as --gqa-native counts them.
    if let (Some(k), Some(p)) = (args.max_changes, &args.near) {
        let units = if args.gqa_native {
            "KV groups, --gqa-native"
        } else {
            "query heads; --gqa-native counts KV groups"
        };
        super::check_max_changes(k, p, target, args.gqa_native, units)?;
    }
    let cfg = OptimizeConfig {
        span,
        model,
        density_band,
        extra_lengths,
        max_rules_per_layer: args.max_rules_per_layer,
        gqa_native: args.gqa_native,
        objective: match args.objective_lengths.as_slice() {
            [] => Objective::Pareto {
                intervals: args.pareto_intervals.unwrap_or(DEFAULT_PARETO_INTERVALS),
            },
            [n_tokens] => Objective::Single {
                n_tokens: *n_tokens,
            },
            many => Objective::Sum {
                n_tokens: many.to_vec(),
            },
        },
        grid,
        solve: SolveOptions {
            method,
            mip_gap: args.mip_gap,
            time_limit: Duration::from_secs_f64(args.time_limit),
        },
        near,
    };
    // `--max-alpha -5` leaves only the dense rule, and the infeasible band then named
    // neither flag: say which ones narrowed the candidates.
    let narrowed: Vec<String> = [
        args.max_alpha.map(|a| format!("--max-alpha {a}")),
        args.min_beta.map(|b| format!("--min-beta {b}")),
    ]
    .into_iter()
    .flatten()
    .collect();
    // A band that the reach check passes can still hold no plan: the mean density moves in
    // steps, and "no assignment satisfies every row at once (...) after 25 dual steps" did
    // not say so. The largest step is at the shortest constrained length.
    let shape = &profiles[0].model;
    let units = shape.layers
        * if cfg.gqa_native {
            shape.kv_heads
        } else {
            shape.q_heads
        };
    let shortest = lens.first().copied().unwrap_or(1).max(1);
    let round = cfg.span.params().span_round_tokens;
    let step = f64::from(round) / f64::from(shortest) / f64::from(units.max(1));
    let result = optimize(&profiles, &names, &cfg).map_err(|e| {
        // A solve that ran out of time before any feasible point is no proof that the band
        // holds no plan: name the flag instead of blaming the band (round 39).
        let out_of_time = matches!(&e, moa::optimize::OptimizeError::Infeasible(m)
            if m.contains("within the time limit"));
        let unreachable_step = matches!(&e, moa::optimize::OptimizeError::Infeasible(m)
            if !m.contains("cannot be met"))
            && !out_of_time;
        // The near plan's rules that the run cannot take (another rule per query head of
        // a KV group with --gqa-native, a rule off the candidate grid): name the flag.
        let near_fault = matches!(&e, moa::optimize::OptimizeError::InvalidConfig(m)
            | moa::optimize::OptimizeError::ShapeMismatch(m) if m.starts_with("the near plan"));
        let e = anyhow::Error::new(e);
        let e = if let (true, Some(p)) = (near_fault, &args.near) {
            e.context(format!("--near `{}`", p.display()))
        } else if out_of_time {
            e.context(format!(
                "--time-limit {} s ran out before a plan was found: allowed up to \
                 {MAX_TIME_LIMIT_S:e} s; each of the run's solves gets a share of it (a 7B-size \
                 solve takes seconds; the ε grid of --pareto-intervals K has L · K^(L−1) \
                 solves for L profiled lengths)",
                args.time_limit
            ))
        } else if unreachable_step {
            let (lo, hi) = cfg.density_band;
            e.context(format!(
                "no plan has a mean KV density in the band [{}, {}] ({:.2e} wide) at every \
                 length: a plan's density moves in steps (spans are multiples of {round} \
                 tokens; one unit of {units} moving one step at N = {shortest} moves the mean \
                 by {step:.2e}), and at most {} per layer narrows it further; widen the \
                 band (--band lo,hi, or --density D for [0.9·D, D])",
                moa::plan::compact_number(lo),
                moa::plan::compact_number(hi),
                hi - lo,
                moa::input::counted(cfg.max_rules_per_layer, "rule")
            ))
        } else {
            e
        };
        if narrowed.is_empty() {
            e
        } else {
            e.context(format!(
                "optimizing over the candidate rules {} leaves",
                narrowed.join(" and ")
            ))
        }
    })?;

    let out = &args.output;
    std::fs::create_dir_all(out).with_context(|| format!("cannot create `{}`", out.display()))?;
    // The folder is this run's: `moa pipeline` takes `summary.txt` as the mark of a finished
    // step and validates every `.toml` beside it. So an earlier run's summary goes first
    // (a run stopped while writing leaves none), and its plans past this run's count
    // (a Pareto set of 5, then one of 2) are removed rather than validated with these.
    let summary_file = out.join("summary.txt");
    if summary_file.is_file() {
        std::fs::remove_file(&summary_file)
            .with_context(|| format!("cannot remove `{}`", summary_file.display()))?;
    }
    let stale = stale_plans(out, result.plans.len());
    for f in &stale {
        std::fs::remove_file(f).with_context(|| format!("cannot remove `{}`", f.display()))?;
    }
    if !stale.is_empty() {
        eprintln!(
            "moa optimize: removed {} plan(s) of an earlier run from {}",
            stale.len(),
            out.display()
        );
    }
    let mut summary = String::new();
    let _ = writeln!(
        summary,
        "moa optimize: {} plan(s) from {} solve(s) in {:.2} s; {} candidate rules; density band [{}, {}] at N = {:?}",
        result.plans.len(),
        result.solves,
        result.seconds,
        result.rules.len(),
        density_band.0,
        density_band.1,
        result.constrained_lengths
    );
    for (i, p) in result.plans.iter().enumerate() {
        let file = out.join(format!("plan_{i}.toml"));
        super::write_whole(&file, p.plan.to_toml().as_bytes())?;
        let pairs = |v: &[(u32, f64)]| {
            v.iter()
                .map(|(n, x)| format!("{n}:{x:.5}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let _ = writeln!(
            summary,
            "plan_{i}.toml  min loss@{}  losses [{}]  density [{}]  cache density [{}]  {:?} {} gap {} ({:.2} s)",
            p.objective_lengths
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join("+"),
            pairs(&p.losses),
            pairs(&p.densities),
            pairs(&p.cache_densities),
            p.method,
            p.status.as_str(),
            p.gap.map_or("unknown".into(), |g| format!("{g:.2e}")),
            p.seconds
        );
        // "losses 0.00000" reads as a bug; say where the zero comes from.
        if let Some(note) = moa::optimize::zero_loss_note(&result, p) {
            let _ = writeln!(summary, "  note: {note}");
        }
    }
    for s in &result.skipped {
        let _ = writeln!(summary, "skipped: {s}");
    }
    // "5 plan(s) from 51 solve(s)" left the other 46 unexplained (round 39).
    if result.dominated + result.duplicates > 0 {
        let _ = writeln!(
            summary,
            "dropped: {} dominated (another plan's losses are no larger at every profiled \
             length and smaller at one), {} duplicate (the same rules or the same losses as a \
             kept plan)",
            result.dominated, result.duplicates
        );
    }
    super::write_whole(&summary_file, summary.as_bytes())?;
    out!("{summary}");
    Ok(ExitCode::SUCCESS)
}

/// `plan_<i>.toml` files in `dir` with `i >= keep` (the plans an earlier run wrote beyond
/// this run's count).
fn stale_plans(dir: &std::path::Path, keep: usize) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<_> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let index = name
                .strip_prefix("plan_")
                .and_then(|r| r.strip_suffix(".toml"))
                .and_then(|i| i.parse::<usize>().ok());
            p.is_file() && index.is_some_and(|i| i >= keep)
        })
        .collect();
    out.sort();
    out
}

/// Several profiles of one length are averaged (`InfluenceProfile::mean`): e.g. the cut
/// influence taken under successive plans (`moa profile --under-plan`), so that a head is
/// priced by every plan it was measured under. The name of a mean lists its files.
fn mean_by_length(
    profiles: Vec<InfluenceProfile>,
    names: Vec<String>,
) -> anyhow::Result<(Vec<InfluenceProfile>, Vec<String>)> {
    let mut groups: Vec<(u32, Vec<InfluenceProfile>, Vec<String>)> = Vec::new();
    for (p, name) in profiles.into_iter().zip(names) {
        match groups.iter_mut().find(|g| g.0 == p.n_tokens) {
            Some(g) => {
                g.1.push(p);
                g.2.push(name);
            }
            None => groups.push((p.n_tokens, vec![p], vec![name])),
        }
    }
    groups
        .into_iter()
        .map(|(n, mut ps, ns)| {
            if ps.len() == 1 {
                return Ok((ps.remove(0), ns.join("")));
            }
            // A copy of a file (another name, same tiles) weighs double as the file itself
            // would: the same influence twice is refused, naming both.
            for (j, b) in ps.iter().enumerate() {
                if let Some(i) = ps[..j]
                    .iter()
                    .position(|a| a.influence == b.influence && a.cuts == b.cuts)
                {
                    anyhow::bail!(
                        "--profile `{}` holds the same influence as `{}` (N = {n}; a copy?): \
                         profiles of one length are averaged, so it would weigh double; give \
                         it once",
                        ns[j],
                        ns[i]
                    );
                }
            }
            let label = format!("mean({})", ns.join(", "));
            let m = InfluenceProfile::mean(&ps).map_err(|e| {
                anyhow::anyhow!("averaging the profiles of N = {n} ({}): {e}", ns.join(", "))
            })?;
            Ok((m, label))
        })
        .collect::<anyhow::Result<Vec<_>>>()
        .map(|v| v.into_iter().unzip())
}
