//! Lowering: a validated [`Plan`] becomes a [`KernelModule`], one [`LayerSpec`] per
//! layer, in a canonical form (rules merged and sorted, heads listed in order) from
//! which every back end generates code. The meaning of each field is in `ir.rs`.

#![warn(missing_docs)]

pub mod consts;
pub mod ir;

pub use ir::{
    CacheLayout, KernelModule, KvHeadSpec, LayerSpec, QHeadSpec, RuleGroup, Segment, StorageType,
};

use crate::plan::Plan;

/// Lowers a plan for one storage type. Infallible: `Plan` is validated on construction.
pub fn lower(plan: &Plan, storage: StorageType) -> KernelModule {
    let m = plan.model();
    let group = m.group_size();
    let layers = plan
        .layers()
        .iter()
        .enumerate()
        .map(|(l, layer)| {
            let mut rules = layer.rules.clone();
            rules.sort();
            rules.dedup();
            let groups: Vec<RuleGroup> = rules
                .iter()
                .map(|r| RuleGroup {
                    rule: *r,
                    q_heads: (0..m.q_heads)
                        .filter(|&h| layer.rules[h as usize] == *r)
                        .collect(),
                })
                .collect();
            let q_heads = (0..m.q_heads)
                .map(|h| {
                    let rule = layer.rules[h as usize];
                    QHeadSpec {
                        q_head: h,
                        kv_head: h / group,
                        rule,
                        group: rules.iter().position(|r| *r == rule).unwrap_or(0) as u32,
                    }
                })
                .collect();
            let kv_heads = (0..m.kv_heads)
                .map(|k| {
                    let q: Vec<u32> = (k * group..(k + 1) * group).collect();
                    let mut own: Vec<_> = q.iter().map(|&h| layer.rules[h as usize]).collect();
                    own.sort();
                    own.dedup();
                    KvHeadSpec {
                        kv_head: k,
                        q_heads: q,
                        uniform_rule: own.len() == 1,
                    }
                })
                .collect();
            LayerSpec {
                layer: l as u32,
                groups,
                q_heads,
                kv_heads,
            }
        })
        .collect();
    KernelModule {
        shape: m.clone(),
        span: plan.span().params(),
        storage,
        layers,
    }
}
