//! A device-wide barrier inside one dispatch (session 32, s32-gbar): does it work through
//! wgpu, and what does a meeting cost against a dependent dispatch?
//!
//! ```sh
//! # W workgroups (comma-separated), P phases (comma-separated), forms (comma-separated:
//! # plain, fresh, atomic, none; the dispatch-per-phase baseline `disp` is always timed)
//! cargo run --release --example wgpu_gbar -- 66,132 1,8,64 plain,atomic,none
//! # lavapipe (this machine): W <= LP_NUM_THREADS, a small spin bound
//! LP_NUM_THREADS=4 MOA_GBAR_SPIN=20000 wgpu_gbar 2,4 1,8 plain,atomic
//! ```
//!
//! The kernel (generated WGSL, one workgroup of 256 lanes per slice): a buffer of R
//! regions of `W × 256` u32 words (R = 2, or P + 1 for `fresh`); phase `p` (counted over
//! the whole run: the dispatch's first phase is `ctl[3]`) reads region `p % R` (written by
//! phase `p − 1`) at lane `i` of workgroup `(w + 1) % W` (a fixed partner: at R = 2 the
//! same lines every second phase, so a stale L1 line shows) and at lane `(i + p) % 256` of
//! workgroup `(w + 1 + p % (W − 1)) % W` (a rotated one), mixes both with `p` ([`mix`])
//! and writes lane `i` of its own slice of region `(p + 1) % R`. Between two phases the workgroups meet at a device-wide barrier:
//! `storageBarrier()`, then lane 0 adds 1 to the arrival counter `ctl[0]` and spins on
//! `atomicLoad(&ctl[0])` until it reaches `W × (phases done)`; the spin is bounded
//! (`MOA_GBAR_SPIN` iterations, default 2^20): past it the workgroup sets the error flag
//! `ctl[1]` and every workgroup leaves (a spinner checks the flag every 64 loads), so a
//! grid larger than the GPU holds at once ends with the flag set instead of hanging
//! (flag 2: the spin loop ended without meeting or reaching the bound, as llvmpipe's
//! loop limiter ends a loop after 65535 trips).
//! After its last phase each workgroup adds 1 to `ctl[2]`; the last to do so (every other
//! one has then left its spins) resets `ctl[0]` and `ctl[2]` and advances `ctl[3]` by P,
//! so the next dispatch continues the sequence.
//!
//! Forms: `plain` reads and writes the data with plain loads and stores; `fresh` too, over
//! P + 1 regions, so a dispatch reads each line in one phase only (stale L1 lines cannot
//! be the cause if it fails; the order of the stores against the counter can); `atomic` reads
//! and writes them with `atomicLoad` / `atomicStore` (the engine's fused merge's partials);
//! `none` skips the meeting (wrong values expected: the phases' own work, for the slope).
//! The baseline `disp` is the P = 1 kernel dispatched P times (the dispatch boundary is
//! the barrier). WGSL's atomics are relaxed and `storageBarrier` is workgroup-scoped, so
//! the spec does not promise the `plain` (or even the `atomic`) form sees other
//! workgroups' writes; this bench says what the adapter does.
//!
//! Each (W, P, form) is first checked: the buffers set from the host, 25 steps (one step =
//! one dispatch of P phases, or P dispatches for `disp`) in one submit, every word of the
//! last phase's half compared with the host's sequence ([`mix`] over 25 × P phases);
//! it prints the count of wrong words (cumulative: one stale word taints every word after
//! it through the mix, so "all" means "at least one") and the error flag. Then timed as
//! `wgpu_decode_bench` times a step: (median T(25 steps) − median T(5)) / 20 over 7
//! alternating submits after warm-up; the rounds go forms in order, then reversed
//! (A B B A), per W and P.

use std::process::ExitCode;
use std::time::Instant;

use moa::runtime::wgpu::WgpuContext;
use wgpu::util::DeviceExt;

/// Lanes a workgroup (= u32 words a slice).
const LANES: u32 = 256;

fn main() -> ExitCode {
    moa::runtime::wgpu::ensure_xdg_runtime_dir();
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wgpu_gbar: {e}");
            ExitCode::FAILURE
        }
    }
}

/// How the data crosses the barrier.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Form {
    /// Plain loads and stores.
    Plain,
    /// Plain loads and stores over a ring of P + 1 regions, so a dispatch reads each
    /// line in one phase only (no line it read before a meeting can sit stale in L1).
    Fresh,
    /// `atomicLoad` / `atomicStore` of u32 words.
    Atomic,
    /// No meeting at all (values wrong: the phases' own time).
    NoBarrier,
    /// The P = 1 kernel, P dependent dispatches.
    Dispatch,
}

impl Form {
    /// Regions of `W × 256` words the data rotates over for `phases` phases a dispatch:
    /// phase p reads region p % R and writes (p + 1) % R.
    fn regions(self, phases: u32) -> u32 {
        if self == Form::Fresh {
            phases + 1
        } else {
            2
        }
    }

    fn parse(s: &str) -> Result<Form, String> {
        match s {
            "plain" => Ok(Form::Plain),
            "fresh" => Ok(Form::Fresh),
            "atomic" => Ok(Form::Atomic),
            "none" => Ok(Form::NoBarrier),
            "disp" => Ok(Form::Dispatch),
            _ => Err(format!("form `{s}`: plain, fresh, atomic, none or disp")),
        }
    }
    fn name(self) -> &'static str {
        match self {
            Form::Plain => "plain",
            Form::Fresh => "fresh",
            Form::Atomic => "atomic",
            Form::NoBarrier => "none",
            Form::Dispatch => "disp",
        }
    }
}

/// One phase's value of a lane from the two words it read (`a`: the fixed partner's,
/// `b`: the rotated one's) and the phase `p` (a murmur-style mix; the host and the kernel
/// compute it in the same wrapping u32 arithmetic).
fn mix(a: u32, b: u32, p: u32, lane: u32) -> u32 {
    let mut x = a ^ b.rotate_left(7) ^ p.wrapping_mul(0x9e37_79b9);
    x = x.wrapping_mul(0x85eb_ca6b);
    x ^= x >> 13;
    x.wrapping_add(lane)
}

/// The host's sequence: `phases` phases from `init` (region 0 of the buffer = phase
/// −1's values), returned as the last phase's `W × 256` words.
fn host_sequence(w: u32, init: &[u32], phases: u32) -> Vec<u32> {
    let n = LANES as usize;
    let mut prev = init.to_vec();
    let mut next = vec![0u32; prev.len()];
    for p in 0..phases {
        let partner_off = if w > 1 { 1 + p % (w - 1) } else { 0 };
        for g in 0..w {
            let fixed = ((g + 1) % w) as usize;
            let rot = ((g + partner_off) % w) as usize;
            for i in 0..LANES {
                let a = prev[fixed * n + i as usize];
                let b = prev[rot * n + ((i + p) % LANES) as usize];
                next[g as usize * n + i as usize] = mix(a, b, p, i);
            }
        }
        std::mem::swap(&mut prev, &mut next);
    }
    prev
}

/// The kernel's WGSL for `w` workgroups and `phases` phases a dispatch (`form`
/// Dispatch uses `phases` = 1), spin bound `spin`.
fn source(w: u32, phases: u32, form: Form, spin: u32) -> String {
    let atomic = form == Form::Atomic;
    let data_ty = if atomic {
        "array<atomic<u32>>"
    } else {
        "array<u32>"
    };
    let (ld, st) = if atomic {
        ("atomicLoad(&data[{}])", "atomicStore(&data[{}], {});")
    } else {
        ("data[{}]", "data[{}] = {};")
    };
    let load = |idx: &str| ld.replace("{}", idx);
    let store = |idx: &str, v: &str| st.replacen("{}", idx, 1).replacen("{}", v, 1);
    let meet = matches!(form, Form::Plain | Form::Fresh | Form::Atomic);
    let regions = form.regions(phases);
    let barrier = if meet {
        format!(
            r#"        if (k + 1u < {phases}u) {{
            storageBarrier();
            if (lid == 0u) {{
                atomicAdd(&ctl[0], 1u);
                let goal = {w}u * (k + 1u);
                var n = 0u;
                var met = false;
                loop {{
                    if (atomicLoad(&ctl[0]) >= goal) {{ met = true; break; }}
                    n += 1u;
                    if ((n & 63u) == 0u && atomicLoad(&ctl[1]) != 0u) {{ abort = 1u; break; }}
                    if (n >= {spin}u) {{ atomicStore(&ctl[1], 1u); abort = 1u; break; }}
                }}
                // A loop left without either (lavapipe ends a loop after 65535 trips).
                if (!met && abort == 0u) {{ atomicStore(&ctl[1], 2u); abort = 1u; }}
                most = max(most, n);
            }}
            if (workgroupUniformLoad(&abort) != 0u) {{ break; }}
        }}
"#
        )
    } else {
        String::new()
    };
    let a = load("half_in + ((g + 1u) % W) * 256u + lid");
    let b = load("half_in + ((g + off) % W) * 256u + ((lid + p) % 256u)");
    let s = store("half_out + g * 256u + lid", "x + lid");
    format!(
        r#"
@group(0) @binding(0) var<storage, read_write> data: {data_ty};
@group(0) @binding(1) var<storage, read_write> ctl: array<atomic<u32>>;

const W: u32 = {w}u;
var<workgroup> abort: u32;
var<workgroup> first: u32;

fn rotl(v: u32, r: u32) -> u32 {{ return (v << r) | (v >> (32u - r)); }}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {{
    let g = wg.x;
    // One lane reads the first phase for the workgroup: a lane that read it after
    // the last workgroup's lane 0 advanced it would run the next dispatch's phase.
    if (lid == 0u) {{ abort = 0u; first = atomicLoad(&ctl[3]); }}
    let p0 = workgroupUniformLoad(&first);
    var most = 0u;
    for (var k = 0u; k < {phases}u; k += 1u) {{
        let p = p0 + k;
        let half_in = (p % {regions}u) * (W * 256u);
        let half_out = ((p + 1u) % {regions}u) * (W * 256u);
        var off = 0u;
        if (W > 1u) {{ off = 1u + p % (W - 1u); }}
        let a = {a};
        let b = {b};
        var x = a ^ rotl(b, 7u) ^ (p * 0x9e3779b9u);
        x = x * 0x85ebca6bu;
        x = x ^ (x >> 13u);
        {s}
{barrier}    }}
    if (lid == 0u) {{
        atomicMax(&ctl[4], most);
        let old = atomicAdd(&ctl[2], 1u);
        if (old == W - 1u) {{
            atomicStore(&ctl[0], 0u);
            atomicStore(&ctl[2], 0u);
            atomicAdd(&ctl[3], {phases}u);
        }}
    }}
}}
"#
    )
}

/// Parses a comma-separated list of u32.
fn list(s: &str) -> Result<Vec<u32>, String> {
    s.split(',')
        .map(|v| v.parse().map_err(|_| format!("`{v}` is not a number")))
        .collect()
}

struct Kernel {
    pipeline: wgpu::ComputePipeline,
    bind: wgpu::BindGroup,
    data: wgpu::Buffer,
    ctl: wgpu::Buffer,
    /// Regions of the data ([`Form::regions`]).
    regions: u32,
    /// Dispatches a step.
    per_step: u32,
    w: u32,
}

impl Kernel {
    fn new(
        ctx: &WgpuContext,
        w: u32,
        phases: u32,
        form: Form,
        spin: u32,
    ) -> Result<Kernel, String> {
        let dev = ctx.device();
        let (kp, per_step) = if form == Form::Dispatch {
            (1, phases)
        } else {
            (phases, 1)
        };
        let src = source(w, kp, form, spin);
        if std::env::var("MOA_GBAR_DUMP").is_ok_and(|v| v == "1") {
            println!("{src}");
        }
        // naga first, so a bad kernel is a readable error, not a wgpu panic.
        let module = naga::front::wgsl::parse_str(&src).map_err(|e| e.emit_to_string(&src))?;
        naga::valid::Validator::new(
            naga::valid::ValidationFlags::all(),
            naga::valid::Capabilities::all(),
        )
        .validate(&module)
        .map_err(|e| format!("naga: {e:?}"))?;
        let module = dev.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("gbar"),
            source: wgpu::ShaderSource::Wgsl(src.into()),
        });
        let pipeline = dev.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some("gbar"),
            layout: None,
            module: &module,
            entry_point: Some("main"),
            compilation_options: Default::default(),
            cache: None,
        });
        let data = dev.create_buffer(&wgpu::BufferDescriptor {
            label: Some("gbar data"),
            size: u64::from(form.regions(kp) * w * LANES) * 4,
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_DST
                | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        let ctl = dev.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("gbar ctl"),
            contents: bytemuck::cast_slice(&[0u32; 8]),
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_DST
                | wgpu::BufferUsages::COPY_SRC,
        });
        let bind = dev.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("gbar"),
            layout: &pipeline.get_bind_group_layout(0),
            entries: &[
                wgpu::BindGroupEntry {
                    binding: 0,
                    resource: data.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 1,
                    resource: ctl.as_entire_binding(),
                },
            ],
        });
        Ok(Kernel {
            pipeline,
            bind,
            data,
            ctl,
            regions: form.regions(kp),
            per_step,
            w,
        })
    }

    fn record(&self, pass: &mut wgpu::ComputePass<'_>) {
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, &self.bind, &[]);
        for _ in 0..self.per_step {
            pass.dispatch_workgroups(self.w, 1, 1);
        }
    }
}

/// Reads `bytes` of `buf` back to the host as u32 words.
fn read_back(ctx: &WgpuContext, buf: &wgpu::Buffer, bytes: u64) -> Result<Vec<u32>, String> {
    let dev = ctx.device();
    let staging = dev.create_buffer(&wgpu::BufferDescriptor {
        label: Some("gbar staging"),
        size: bytes,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let mut enc = dev.create_command_encoder(&Default::default());
    enc.copy_buffer_to_buffer(buf, 0, &staging, 0, bytes);
    ctx.queue().submit([enc.finish()]);
    let slice = staging.slice(..);
    slice.map_async(wgpu::MapMode::Read, |_| {});
    dev.poll(wgpu::PollType::wait_indefinitely())
        .map_err(|e| e.to_string())?;
    let words = {
        let view = slice.get_mapped_range().map_err(|e| e.to_string())?;
        bytemuck::cast_slice(&view).to_vec()
    };
    staging.unmap();
    Ok(words)
}

/// Steps a check runs in one submit (`MOA_GBAR_CHECK_STEPS`, default 25).
fn check_steps() -> u32 {
    std::env::var("MOA_GBAR_CHECK_STEPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(25)
}

/// Sets the buffers, runs [`check_steps`] steps in one submit and compares the last
/// phase's region with the host's: (wrong words, error flag, most spin loads, seconds).
fn check(ctx: &WgpuContext, k: &Kernel, phases: u32) -> Result<(usize, u32, u32, f64), String> {
    let n = (k.w * LANES) as usize;
    let init: Vec<u32> = (0..n as u32)
        .map(|i| mix(i, i.wrapping_mul(2_654_435_761), 0xffff_ffff, 0))
        .collect();
    let mut all = init.clone();
    all.resize(n * k.regions as usize, 0);
    ctx.queue()
        .write_buffer(&k.data, 0, bytemuck::cast_slice(&all));
    ctx.queue()
        .write_buffer(&k.ctl, 0, bytemuck::cast_slice(&[0u32; 8]));
    let steps = check_steps();
    let t = time_submit(ctx, steps, &|pass| k.record(pass))?;
    let total = steps * phases;
    let got = read_back(ctx, &k.data, u64::from(k.regions * k.w * LANES) * 4)?;
    let half = (total % k.regions) as usize;
    let want = host_sequence(k.w, &init, total);
    let wrong = got[half * n..(half + 1) * n]
        .iter()
        .zip(&want)
        .filter(|(a, b)| a != b)
        .count();
    let ctl = read_back(ctx, &k.ctl, 32)?;
    if ctl[3] != total && ctl[1] == 0 {
        return Err(format!("ctl[3] = {} after {total} phases", ctl[3]));
    }
    Ok((wrong, ctl[1], ctl[4], t))
}

/// Wall-clock of one submit holding `steps` repetitions of `record`, waited for.
fn time_submit(
    ctx: &WgpuContext,
    steps: u32,
    record: &dyn Fn(&mut wgpu::ComputePass<'_>),
) -> Result<f64, String> {
    let dev = ctx.device();
    let mut encoder = dev.create_command_encoder(&Default::default());
    {
        let mut pass = encoder.begin_compute_pass(&Default::default());
        for _ in 0..steps {
            record(&mut pass);
        }
    }
    let start = Instant::now();
    ctx.queue().submit([encoder.finish()]);
    dev.poll(wgpu::PollType::wait_indefinitely())
        .map_err(|e| e.to_string())?;
    Ok(start.elapsed().as_secs_f64())
}

/// Seconds per step as `wgpu_decode_bench`'s `per_step`: (median T(25) − median T(5)) /
/// 20 over 7 alternating submits of each after at least 3 warm-up submits and 50 ms;
/// `None` when the difference is not positive.
fn per_step(ctx: &WgpuContext, k: &Kernel) -> Result<Option<f64>, String> {
    let (lo, hi) = (5u32, 25u32);
    let rec = |pass: &mut wgpu::ComputePass<'_>| k.record(pass);
    let mut warm = 0.0;
    for i in 0.. {
        if i >= 3 && warm >= 0.05 {
            break;
        }
        warm += time_submit(ctx, hi, &rec)?;
    }
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..7 {
        a.push(time_submit(ctx, lo, &rec)?);
        b.push(time_submit(ctx, hi, &rec)?);
    }
    let median = |mut t: Vec<f64>| {
        t.sort_by(f64::total_cmp);
        t[t.len() / 2]
    };
    let d = median(b) - median(a);
    Ok((d > 0.0).then(|| d / f64::from(hi - lo)))
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: wgpu_gbar W[,W..] P[,P..] FORM[,FORM..] (plain, fresh, atomic, none)";
    let ws = list(args.first().ok_or(usage)?)?;
    let ps = list(args.get(1).ok_or(usage)?)?;
    let mut forms = vec![Form::Dispatch];
    for f in args
        .get(2)
        .map_or("plain,atomic", String::as_str)
        .split(',')
    {
        forms.push(Form::parse(f)?);
    }
    let spin: u32 = match std::env::var("MOA_GBAR_SPIN") {
        Ok(v) => v.parse().map_err(|_| format!("MOA_GBAR_SPIN `{v}`"))?,
        Err(_) => 1 << 20,
    };
    let check_only = std::env::var("MOA_GBAR_CHECK_ONLY").is_ok_and(|v| v == "1");
    let ctx = WgpuContext::new().map_err(|e| e.to_string())?;
    println!(
        "gbar on adapter {:?}; spin bound {spin}",
        ctx.adapter_name()
    );
    for &w in &ws {
        if w == 0 {
            return Err("W must be > 0".into());
        }
        for &p in &ps {
            if p == 0 {
                return Err("P must be > 0".into());
            }
            let mut kernels = Vec::new();
            for &f in &forms {
                let k = Kernel::new(&ctx, w, p, f, spin)?;
                let (wrong, flag, most, t) = check(&ctx, &k, p)?;
                println!(
                    "check W={w} P={p} {:6}: wrong {wrong} of {} words, error flag {flag}, most spin loads {most}, {:.1} ms",
                    f.name(),
                    w * LANES,
                    t * 1e3
                );
                kernels.push((f, k, flag));
            }
            if check_only {
                continue;
            }
            let mut times: Vec<Vec<f64>> = vec![Vec::new(); kernels.len()];
            let order: Vec<usize> = (0..kernels.len()).chain((0..kernels.len()).rev()).collect();
            for &i in &order {
                let (_, k, flag) = &kernels[i];
                if *flag != 0 {
                    continue;
                }
                if let Some(t) = per_step(&ctx, k)? {
                    times[i].push(t);
                }
            }
            for (i, (f, _, flag)) in kernels.iter().enumerate() {
                let t: Vec<String> = times[i].iter().map(|t| format!("{:.2}", t * 1e6)).collect();
                let mean = times[i].iter().sum::<f64>() / times[i].len().max(1) as f64;
                println!(
                    "time W={w} P={p} {:6}: step {} us (A B B A: {}), {:.3} us a phase{}",
                    f.name(),
                    if times[i].is_empty() {
                        "-".into()
                    } else {
                        format!("{:.2}", mean * 1e6)
                    },
                    t.join(" "),
                    mean * 1e6 / f64::from(p),
                    if *flag != 0 {
                        " (error flag: not timed)"
                    } else {
                        ""
                    }
                );
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_sequence_phase_zero_reads_partner() {
        let init: Vec<u32> = (0..2 * LANES).collect();
        let out = host_sequence(2, &init, 1);
        assert_eq!(out[0], mix(init[256], init[256], 0, 0));
    }
}
