//! The sink + ring cache, append by append across wraparound, and GQA segment sizes.

use moa::lower::{lower, CacheLayout, StorageType};
use moa::plan::Plan;

fn plan(text: &str) -> Plan {
    Plan::from_toml_str(text, "layout.toml").unwrap()
}

const GQA: &str = r#"
format_version = 1
[model]
layers = 1
q_heads = 4
kv_heads = 2
head_dim = 8
max_context_tokens = 64
[span]
sink_tokens = 2
min_span_tokens = 1
block_tokens = 1
[[layers]]
alpha = [5, 3, 0, 1]
beta = [0.0, 0.0, 0.0, 0.0]
"#;

#[test]
fn kv_segment_holds_largest_span_of_its_query_heads() {
    let p = plan(GQA);
    let m = lower(&p, StorageType::F32);
    let layout = CacheLayout::new(&m.layers[0], &m.span, 40);
    let spans: Vec<_> = layout
        .segments
        .iter()
        .map(|s| (s.offset, s.span, s.sink, s.ring))
        .collect();
    // kv 0 serves q heads 0 (span 5) and 1 (span 3); kv 1 serves q 2 (min span 1) and 3 (1).
    assert_eq!(spans, vec![(0, 5, 2, 3), (5, 1, 1, 0)]);
    assert_eq!(layout.row_slots, 6);
}

#[test]
fn ring_positions_follow_every_append() {
    let p = plan(GQA);
    let m = lower(&p, StorageType::F32);
    let layout = CacheLayout::new(&m.layers[0], &m.span, 40);
    // Simulate the cache: write each token to its slot, compare with `positions`.
    let mut held: Vec<Option<u64>> = vec![None; 5];
    for t in 0..20u64 {
        if let Some(slot) = layout.slot_of(0, t) {
            held[slot as usize] = Some(t);
        }
        assert_eq!(layout.positions(0, t), held, "after writing token {t}");
    }
    // Token 7 in a ring of 3 after a sink of 2: slot 2 + (7-2) mod 3 = 4.
    assert_eq!(layout.slot_of(0, 7), Some(4));
    // A segment without a ring keeps only its sink.
    assert_eq!(layout.slot_of(1, 0), Some(5));
    assert_eq!(layout.slot_of(1, 1), None);
}

#[test]
fn every_kept_key_is_in_the_cache() {
    // For each query head and position, the keys the mask keeps are exactly those the
    // segment holds and the head's window accepts: the cache never drops a kept key.
    let p = plan(GQA);
    let m = lower(&p, StorageType::F32);
    let n = 40;
    let layout = CacheLayout::new(&m.layers[0], &m.span, n);
    for h in 0..4 {
        let w = m.layers[0].window(h, n, &m.span);
        let kv = m.layers[0].q_heads[h].kv_head as usize;
        for t in 0..30u64 {
            let want: Vec<u64> = (0..=t).filter(|&k| w.keeps(t, k)).collect();
            let mut got: Vec<u64> = layout
                .positions(kv, t)
                .into_iter()
                .flatten()
                .filter(|&k| w.keeps(t, k))
                .collect();
            got.sort_unstable();
            assert_eq!(got, want, "q head {h} at t {t}");
        }
    }
}

/// Session 35: the CUDA decode's sub-groups (a GQA group past 8) take their work list over
/// each KV head's segment repeated once per sub-group, the cache itself unchanged; the work
/// list's segment (row · kv_heads + kv_head) · sub_groups + sub-group reads its KV head.
#[test]
fn sub_grouped_layout_repeats_each_kv_segment() {
    use moa::runtime::worklist::DecodeWork;
    let m = lower(&plan(GQA), StorageType::F32);
    let layout = CacheLayout::new(&m.layers[0], &m.span, 64);
    assert_eq!(layout.sub_grouped(1), layout);
    let sub = layout.sub_grouped(3);
    assert_eq!(sub.row_slots, layout.row_slots);
    assert_eq!(sub.n_tokens, layout.n_tokens);
    assert_eq!(sub.segments.len(), 3 * layout.segments.len());
    for (i, s) in sub.segments.iter().enumerate() {
        assert_eq!(*s, layout.segments[i / 3]);
    }
    let work = DecodeWork::build(&sub, &[10, 63], 2);
    assert_eq!(work.seg_chunks.len(), 2 * 6);
    for it in &work.items {
        let kv = (it[0] as usize % 6) / 3;
        assert_eq!(
            (it[4], it[5]),
            (layout.segments[kv].offset, layout.segments[kv].span)
        );
    }
}
