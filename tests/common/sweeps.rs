//! How much of a tuning sweep a test runs: CI's part or the whole cross product.
//!
//! The engine and kernel tests sweep tuning choices (product KSPLIT, rows a workgroup, decode
//! forms, …) across storage types and row sets. On lavapipe each distinct pipeline is
//! compiled by llvmpipe at its first dispatch, seconds each on a fresh machine, and the
//! cross products had CI at 50 minutes on 2 cores against its 30-minute budget (session 50,
//! benches/RESULTS.md). By default each choice other than the default runs once, in the
//! storage type and row set named at its sweep, and the default choice runs in all;
//! `MOA_TEST_FULL=1` runs every combination. Run it after changing a product or decode
//! template or the engine's dispatch of one (README, "Tests").
#![allow(dead_code)]

/// Whether `MOA_TEST_FULL=1` asks for every combination of every sweep.
pub fn full() -> bool {
    std::env::var_os("MOA_TEST_FULL").is_some_and(|v| v == "1")
}

/// Whether choice number `choice` of a sweep runs its combination `index` of `count`
/// (storage types, row sets, …): every combination under [`full`] and for the default
/// choice (`default_choice`), else one a choice, `choice % count`, so that across the
/// sweep every kind of combination still runs.
pub fn runs(choice: usize, default_choice: bool, index: usize, count: usize) -> bool {
    full() || default_choice || index == choice % count
}

/// Whether choice number `choice` of a sweep runs on fixture `here`, `fits` being the
/// fixtures the choice applies to (an f16-only knob: the f16 ones): every fixture for the
/// first choice (the default) and under [`full`], else one of `fits`, taking turns.
pub fn runs_on(choice: usize, fits: &[usize], here: usize) -> bool {
    full() || choice == 0 || fits.get(choice % fits.len().max(1)) == Some(&here)
}

/// The tuning variants of a list (`WGxBNxBLOCKS` or `WxS` numbers, then one letter a
/// choice, as `PrefillTuning` and `DecodeTuning` print them) that a test compiles, in the
/// list's order: all under
/// [`full`], else the first (the default or the sweep's base) and then, greedily, the
/// variant that adds the most numbers and letters no chosen variant has, until every
/// number and letter of the list is in some chosen variant. Each choice is still compiled
/// in CI, inside its longest combination; the other combinations of choices that share a
/// template branch run under `MOA_TEST_FULL=1`. Session 53: the two prefill sweeps of
/// `cuda_nvrtc` compiled 51 whole layer files (NVRTC and ptxas, 160 s of CPU of CI's
/// 30-minute budget) where 13 cover every choice.
pub fn cover<'a>(variants: &[&'a str]) -> Vec<&'a str> {
    if full() || variants.is_empty() {
        return variants.to_vec();
    }
    let features = |v: &str| -> Vec<String> {
        let at = v
            .find(|c: char| c.is_ascii_alphabetic() && c != 'x')
            .unwrap_or(v.len());
        let (dims, flags) = v.split_at(at);
        dims.split('x')
            .enumerate()
            .map(|(i, n)| format!("{i}={n}"))
            .chain(flags.chars().map(String::from))
            .collect()
    };
    let mut chosen = vec![false; variants.len()];
    chosen[0] = true;
    let mut covered: Vec<String> = features(variants[0]);
    loop {
        let gain = |v: &str| features(v).iter().filter(|f| !covered.contains(f)).count();
        let best = (0..variants.len())
            .filter(|&i| !chosen[i])
            .max_by_key(|&i| (gain(variants[i]), std::cmp::Reverse(i)));
        match best {
            Some(i) if gain(variants[i]) > 0 => {
                chosen[i] = true;
                covered.extend(features(variants[i]));
            }
            _ => {
                return (variants.iter().zip(chosen))
                    .filter_map(|(&v, c)| c.then_some(v))
                    .collect()
            }
        }
    }
}
