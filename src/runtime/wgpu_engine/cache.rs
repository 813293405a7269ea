//! A request's KV cache of one layer, split by rows over the storage binding limit
//! (DESIGN.md §7): `rows × row_slots × head_dim` elements per layer outgrow one binding
//! long before device memory (the Llama-3.2-1B shape at 32 rows × 4k tokens in f16 is
//! 256 MiB per layer and tensor; lavapipe binds 128 MiB). Each part holds consecutive
//! rows in its own K and V buffers, so no row is cut and the cache layout inside a part is
//! the one of §5.
//!
//! Writes: the RoPE + cache-write shaders take the part's first row and row count and
//! write only the tokens of those rows, at `row - row0`. Reads: the decode attention runs
//! once per part over that part's share of the layer's work list, whose items keep their
//! absolute row (for `row_pos`, Q and the partials) but carry the segment's offset rebased
//! by `-row0 · row_slots` (mod 2^32), so the kernel's cache index `row · row_slots +
//! offset + slot` lands inside the part's buffer (u32 arithmetic wraps in WGSL).

#![warn(missing_docs)]

use std::ops::Range;

use super::EngineError;
use crate::runtime::worklist::DecodeWork;

/// Consecutive row ranges whose caches of `row_bytes` bytes per row (K or V of one layer)
/// fit `max_binding` each: one range when all `rows` fit, else as few parts as fit, of
/// near-equal size (so the last part is not a sliver). Errors: one row above the limit,
/// naming `name` (a longer context than one binding holds for one row).
pub fn cache_row_parts(
    name: &str,
    rows: usize,
    row_bytes: u64,
    max_binding: u64,
) -> Result<Vec<Range<usize>>, EngineError> {
    let fit = max_binding / row_bytes.max(1);
    if fit == 0 {
        return Err(EngineError::TooLarge {
            name: format!("{name} (one row's cache; a shorter context fits)"),
            bytes: row_bytes,
            limit: max_binding,
        });
    }
    let rows = rows.max(1);
    let parts = rows.div_ceil(fit as usize);
    let per = rows.div_ceil(parts);
    Ok((0..rows)
        .step_by(per)
        .map(|r0| r0..(r0 + per).min(rows))
        .collect())
}

/// The items of `work` (a whole layer's list, every row) for rows `rows`, as the flat
/// `u32[n, 8]` list the decode kernel reads, with each segment's offset rebased to the
/// part's buffer (`offset - rows.start · row_slots`, wrapping) and the segment's first
/// item counted from the part's first item.
pub fn part_work(work: &DecodeWork, kv_heads: usize, rows: &Range<usize>) -> Vec<u32> {
    let seg = |it: &[u32; 8]| it[0] as usize / kv_heads.max(1);
    let first = work.items.partition_point(|it| seg(it) < rows.start);
    let end = work.items.partition_point(|it| seg(it) < rows.end);
    work.items[first..end]
        .iter()
        .flat_map(|it| {
            let row_slots = it[6];
            let shift = (rows.start as u64 * u64::from(row_slots)) as u32;
            [
                it[0],
                it[1],
                it[2],
                it[3] - first as u32,
                it[4].wrapping_sub(shift),
                it[5],
                it[6],
                it[7],
            ]
        })
        .collect()
}

/// One part of a layer's cache: rows `rows`, their K and V buffers, and the decode work
/// list over them (`n_items` items).
pub(super) struct CachePart {
    pub(super) rows: Range<usize>,
    pub(super) k: wgpu::Buffer,
    pub(super) v: wgpu::Buffer,
    pub(super) work: wgpu::Buffer,
    pub(super) n_items: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_split_into_near_equal_parts_that_fit() {
        assert_eq!(cache_row_parts("k", 16, 100, 1600).unwrap(), vec![0..16]);
        assert_eq!(
            cache_row_parts("k", 16, 100, 1500).unwrap(),
            vec![0..8, 8..16]
        );
        assert_eq!(
            cache_row_parts("k", 7, 100, 300).unwrap(),
            vec![0..3, 3..6, 6..7]
        );
        let e = cache_row_parts("k_cache.3", 2, 100, 99).unwrap_err();
        assert!(e.to_string().contains("k_cache.3"), "{e}");
    }

    #[test]
    fn a_part_keeps_its_rows_items_with_rebased_offsets() {
        // Two KV heads, three rows, one item per segment (offsets 0 and 20).
        let items: Vec<[u32; 8]> = (0..6u32)
            .map(|s| [s, 0, 20, s, (s % 2) * 20, 20, 40, 1])
            .collect();
        let work = DecodeWork {
            chunk: 32,
            items,
            seg_chunks: vec![1; 6],
        };
        let flat = part_work(&work, 2, &(1..3));
        assert_eq!(flat.len(), 4 * 8);
        // Row 1, head 0: offset 0 - 40 (wrapped); its first item is the part's item 0.
        assert_eq!(&flat[..8], &[2, 0, 20, 0, 0u32.wrapping_sub(40), 20, 40, 1]);
        // row · row_slots + offset lands at (row - 1) · row_slots + offset.
        let row = flat[8] / 2;
        assert_eq!((row * 40).wrapping_add(flat[8 + 4]), 20);
        assert!(part_work(&work, 2, &(0..1))
            .chunks(8)
            .all(|it| it[0] / 2 == 0));
    }
}
