//! The decode work list (docs/DESIGN.md §6): every (row, KV head) segment's written
//! slots cut into equal chunks, one thread block per chunk, so a layer whose spans range
//! from 128 to 16k tokens keeps every SM busy. Built on the host when the lengths change
//! (once per request, or per step while a ring is still filling), never in the kernel.

#![warn(missing_docs)]

use crate::lower::CacheLayout;

/// One decode step's work list for one layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeWork {
    /// Slots per chunk (a multiple of the kernel's key tile); a segment's last chunk may
    /// be shorter.
    pub chunk: u32,
    /// `[n_items]`: (segment = row · kv_heads + kv_head, first slot, end slot, first item
    /// of the segment, the segment's first slot in the row, its span, the row's slots,
    /// the segment's item count); chunk slots are relative to the segment. A segment's
    /// items are consecutive.
    pub items: Vec<[u32; 8]>,
    /// Items per segment, `[rows · kv_heads]` (1: the block writes O itself).
    pub seg_chunks: Vec<u32>,
}

/// Slots of a segment of `span` slots holding a token after tokens `0..=t` were written:
/// the sink and then the ring fill in slot order, so they are the prefix
/// `[0, min(t + 1, span))` (`lower::CacheLayout::positions`).
pub fn written_slots(span: u32, t: u32) -> u32 {
    span.min(t.saturating_add(1))
}

/// Written slots of every (row, KV segment) pair, row-major: [`written_slots`] of each
/// segment of `layout` for each position in `row_pos` (`row_pos.len() × segments` values,
/// in slots).
fn written_per_segment<'a>(
    layout: &'a CacheLayout,
    row_pos: &'a [u32],
) -> impl Iterator<Item = u32> + 'a {
    row_pos.iter().flat_map(move |&t| {
        layout
            .segments
            .iter()
            .map(move |s| written_slots(s.span, t))
    })
}

impl DecodeWork {
    /// The work list for rows at positions `row_pos` over `layout`, in chunks of `chunk`
    /// slots (> 0). A segment with no written slot (span 0) still gets one empty item, so
    /// its output is written (as zeros, as the reference gives for an empty key set).
    pub fn build(layout: &CacheLayout, row_pos: &[u32], chunk: u32) -> DecodeWork {
        let chunk = chunk.max(1);
        let kv = layout.segments.len();
        let mut items = Vec::new();
        let mut seg_chunks = Vec::with_capacity(row_pos.len() * kv);
        for (row, &t) in row_pos.iter().enumerate() {
            for (h, seg) in layout.segments.iter().enumerate() {
                let id = (row * kv + h) as u32;
                let written = written_slots(seg.span, t);
                let n = written.div_ceil(chunk).max(1);
                let first = items.len() as u32;
                for c in 0..n {
                    let c0 = (c * chunk).min(written);
                    let c1 = (c0 + chunk).min(written);
                    items.push([id, c0, c1, first, seg.offset, seg.span, layout.row_slots, n]);
                }
                seg_chunks.push(n);
            }
        }
        DecodeWork {
            chunk,
            items,
            seg_chunks,
        }
    }

    /// The work list of [`DecodeSplit`] `split`: equal chunks ([`Self::build`]) or, with
    /// `split.cluster` > 1, [`Self::build_clusters`].
    pub fn build_split(
        layout: &CacheLayout,
        row_pos: &[u32],
        split: DecodeSplit,
        key_tile: u32,
    ) -> DecodeWork {
        if split.packed {
            DecodeWork::build_packed(layout, row_pos, split.cluster, split.chunk, key_tile)
        } else if split.cluster > 1 {
            DecodeWork::build_clusters(layout, row_pos, split.cluster, key_tile)
        } else if let Some(extra) = split.last_extra {
            DecodeWork::build_last_longer(layout, row_pos, split.chunk, extra, key_tile)
        } else {
            DecodeWork::build(layout, row_pos, split.chunk)
        }
    }

    /// Equal chunks with a longer last chunk (staggered ends, [`DecodeSplit::last_extra`]):
    /// a segment of `written` slots keeps [`Self::build`]'s item count n = ⌈written /
    /// `chunk`⌉, but over its T = ⌈written / `key_tile`⌉ key tiles the last item gets
    /// ⌊(T − `extra`) / n⌋ + `extra` tiles (at most T) and the other n − 1 share the rest
    /// as evenly as whole tiles allow (the first ones one tile more), so the last item is
    /// `extra` − 1 to `extra` tiles longer than the others; where fewer tiles are left than
    /// n − 1 items, the segment gets fewer items (none empty). With `extra` 0 the segment's
    /// tiles are spread evenly (items of ⌊T / n⌋ or ⌈T / n⌉ tiles, never longer than
    /// `chunk`), where [`Self::build`] leaves the remainder to a short last chunk. On a one-wave plain list the
    /// other chunks then finish and publish their partials while the last one still
    /// streams, so the last to arrive (which merges) finds them in L2: with
    /// `DecodeTuning::own_merge` it merges from its registers at once. Every written slot
    /// is in exactly one item, in slot order; `chunk` of the result is the longest item.
    pub fn build_last_longer(
        layout: &CacheLayout,
        row_pos: &[u32],
        chunk: u32,
        extra: u32,
        key_tile: u32,
    ) -> DecodeWork {
        let chunk = chunk.max(1);
        let key_tile = key_tile.max(1);
        let kv = layout.segments.len();
        let mut items = Vec::new();
        let mut seg_chunks = Vec::with_capacity(row_pos.len() * kv);
        let mut longest = 1;
        for (row, &t) in row_pos.iter().enumerate() {
            for (h, seg) in layout.segments.iter().enumerate() {
                let id = (row * kv + h) as u32;
                let written = written_slots(seg.span, t);
                let tiles = written.div_ceil(key_tile);
                let n = written.div_ceil(chunk).max(1);
                // Tiles of each item, the last one's last.
                let mut lens: Vec<u32> = if n <= 1 {
                    vec![tiles]
                } else {
                    let last = (tiles.saturating_sub(extra) / n + extra).min(tiles);
                    let rest = tiles - last;
                    let others = (n - 1).min(rest);
                    let mut l: Vec<u32> = (0..others)
                        .map(|i| rest / others + u32::from(i < rest % others))
                        .collect();
                    l.push(last);
                    l
                };
                if lens.is_empty() {
                    lens.push(0);
                }
                let first = items.len() as u32;
                let n = lens.len() as u32;
                let mut c0 = 0;
                for len in lens {
                    let c1 = (c0 + len * key_tile).min(written);
                    longest = longest.max(c1 - c0);
                    items.push([id, c0, c1, first, seg.offset, seg.span, layout.row_slots, n]);
                    c0 = c1;
                }
                seg_chunks.push(n);
            }
        }
        DecodeWork {
            chunk: longest,
            items,
            seg_chunks,
        }
    }

    /// The work list of a thread-block-cluster launch with whole segments packed into
    /// clusters of `size` blocks (docs/DESIGN.md §6): a segment of `written` slots gets
    /// k = ⌈written / `chunk`⌉ items (at most `size`; at least 1), each of ⌈written / k⌉
    /// slots rounded up to `key_tile` (so never longer than `chunk` when k < `size` and
    /// `chunk` is a multiple of `key_tile`), and the segments go, largest k first, to the
    /// first cluster with room (first-fit decreasing); a cluster's spare blocks become
    /// empty items of its last segment, so every cluster is full and each segment's items
    /// are consecutive inside one cluster, where they merge through distributed shared
    /// memory. Launched plainly, the same list merges through the arrival counter (the
    /// empty items count in and carry no key). `chunk` of the result is the longest item.
    pub fn build_packed(
        layout: &CacheLayout,
        row_pos: &[u32],
        size: u32,
        chunk: u32,
        key_tile: u32,
    ) -> DecodeWork {
        let size = size.clamp(1, MAX_CLUSTER_WIDE);
        let key_tile = key_tile.max(1);
        let chunk = chunk.max(1);
        let kv = layout.segments.len();
        // (segment id, written slots, items, item length)
        let mut segs = Vec::with_capacity(row_pos.len() * kv);
        for (row, &t) in row_pos.iter().enumerate() {
            for (h, seg) in layout.segments.iter().enumerate() {
                let written = written_slots(seg.span, t);
                let k = written.div_ceil(chunk).clamp(1, size);
                let len = written.div_ceil(k).div_ceil(key_tile).max(1) * key_tile;
                segs.push(((row * kv + h) as u32, written, k, len));
            }
        }
        let mut order: Vec<usize> = (0..segs.len()).collect();
        // Stable: segments of equal k keep the list order.
        order.sort_by_key(|&i| std::cmp::Reverse(segs[i].2));
        let mut bins: Vec<(u32, Vec<usize>)> = Vec::new();
        for i in order {
            let k = segs[i].2;
            match bins.iter_mut().find(|b| b.0 + k <= size) {
                Some(b) => {
                    b.0 += k;
                    b.1.push(i);
                }
                None => bins.push((k, vec![i])),
            }
        }
        let mut items = Vec::with_capacity(bins.len() * size as usize);
        let mut seg_chunks = vec![0; segs.len()];
        let mut longest = 0;
        for (used, members) in &bins {
            for (m, &i) in members.iter().enumerate() {
                let (id, written, k, len) = segs[i];
                let seg = &layout.segments[id as usize % kv];
                // The cluster's spare blocks: empty items of its last segment.
                let n = if m + 1 == members.len() {
                    k + size - used
                } else {
                    k
                };
                let first = items.len() as u32;
                for c in 0..n {
                    let c0 = (c * len).min(written);
                    let c1 = (c0 + len).min(written);
                    longest = longest.max(c1 - c0);
                    items.push([id, c0, c1, first, seg.offset, seg.span, layout.row_slots, n]);
                }
                seg_chunks[id as usize] = n;
            }
        }
        DecodeWork {
            chunk: longest.max(1),
            items,
            seg_chunks,
        }
    }

    /// The work list of a thread-block-cluster launch (docs/DESIGN.md §6): every segment
    /// cut into exactly `size` items (one cluster of `size` blocks, which merge the
    /// segment through distributed shared memory), each of the segment's written slots
    /// divided by `size` rounded up to `key_tile`; trailing items of a short segment are
    /// empty (first slot = end slot). Items of a segment are consecutive and its first
    /// item is a multiple of `size`, as the launch's clusters are. `chunk` is the
    /// longest item.
    pub fn build_clusters(
        layout: &CacheLayout,
        row_pos: &[u32],
        size: u32,
        key_tile: u32,
    ) -> DecodeWork {
        let size = size.max(1);
        let key_tile = key_tile.max(1);
        let kv = layout.segments.len();
        let mut items = Vec::with_capacity(row_pos.len() * kv * size as usize);
        let mut longest = key_tile;
        for (row, &t) in row_pos.iter().enumerate() {
            for (h, seg) in layout.segments.iter().enumerate() {
                let id = (row * kv + h) as u32;
                let written = written_slots(seg.span, t);
                let chunk = written.div_ceil(size).div_ceil(key_tile).max(1) * key_tile;
                longest = longest.max(chunk.min(written.max(key_tile)));
                let first = items.len() as u32;
                for c in 0..size {
                    let c0 = (c * chunk).min(written);
                    let c1 = (c0 + chunk).min(written);
                    items.push([
                        id,
                        c0,
                        c1,
                        first,
                        seg.offset,
                        seg.span,
                        layout.row_slots,
                        size,
                    ]);
                }
            }
        }
        DecodeWork {
            chunk: longest,
            items,
            seg_chunks: vec![size; row_pos.len() * kv],
        }
    }

    /// Items in the list (one chunk of one segment each): the decode grid's work count.
    pub fn n_items(&self) -> u32 {
        self.items.len() as u32
    }

    /// The items as the kernel's flat `u32[n_items, 8]`.
    pub fn flat(&self) -> Vec<u32> {
        self.items.iter().flatten().copied().collect()
    }
}

/// How the host picks a step's chunk size (a multiple of the kernel's key tile, 1 to 64
/// tiles), by minimising a modelled time in slots. `blocks` is how many blocks the GPU
/// runs at once (SMs × resident blocks per SM), `items(c)` the work list's length with
/// chunks of `c` slots and `overhead_tiles` a block's cost besides its slots (filling
/// the copy pipeline, writing and merging partial states), in key tiles.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChunkPolicy {
    /// Whole waves: `ceil(items / blocks) × (chunk + overhead)`. Few long segments get
    /// split until every SM has work; many get one wave of long chunks.
    Waves {
        /// A block's cost besides its slots (filling the copy pipeline, writing and
        /// merging its partial state), in key tiles.
        overhead_tiles: u32,
    },
    /// Work spread by the block scheduler as blocks finish (list scheduling):
    /// `Σ (slots_i + overhead) / blocks + tail_pct / 100 × chunk`: the last blocks to
    /// start leave SMs idle for part of a chunk, so shorter chunks shorten the tail at
    /// the price of more blocks (each paying the overhead).
    Balanced {
        /// A block's cost besides its slots (filling the copy pipeline, writing and
        /// merging its partial state), in key tiles.
        overhead_tiles: u32,
        /// Share of a chunk, in %, the tail of the last blocks to start costs.
        tail_pct: u32,
    },
    /// A fixed size in slots (rounded up to the key tile).
    Fixed(u32),
    /// Memory streaming with a per-block rate cap (benches/RESULTS.md, "Call 7"): the time
    /// of a fluid model fitted to the H200's decode timings. A block streams at most one
    /// slot per time unit (its own rate, set by the bytes it keeps in flight: Little's
    /// law), and all blocks together at most `sat_pct` % of `blocks` slots per unit (the
    /// memory's rate: so `sat_pct` = memory bandwidth × latency / (bytes in flight per
    /// block × blocks)). Items go, in order, to the least-loaded of `blocks` block slots;
    /// the slots' totals then drain with that shared rate, so a layer of few long items
    /// pays its tail at one block's rate, and many short items fill it. Each wave of
    /// `blocks` items adds `wave_tiles` key tiles of fixed cost (equal chunks start
    /// together, so their first tiles' latency and their partial writes are not hidden
    /// behind other blocks' streams), and a list that splits a segment adds `merge_tiles`
    /// (the last chunk's merge, on the critical path).
    Stream {
        /// The memory's rate as a share, in %, of `blocks` slots per time unit.
        sat_pct: u32,
        /// Fixed cost of each wave of `blocks` items, in key tiles.
        wave_tiles: u32,
        /// Cost of the merge of a split segment's last chunk, in key tiles.
        merge_tiles: u32,
    },
    /// Thread-block clusters of `size` blocks (2 to [`MAX_CLUSTER`], or
    /// [`MAX_CLUSTER_WIDE`] for the `h` kernels), one per segment:
    /// each segment cut into `size` items that merge through distributed shared memory
    /// ([`DecodeWork::build_clusters`]; sm_90). Executors that launch no clusters cut
    /// equal chunks of the longest such item instead.
    Cluster {
        /// Blocks per cluster (items per segment).
        size: u32,
    },
    /// Per step, the fastest of clusters of 2, 4 and 8 blocks and equal chunks of
    /// `Waves { overhead_tiles }` by the fluid model of one launch ([`FluidModel`], fitted
    /// to the H200: benches/RESULTS.md, "Calls 7 and 8" and session 8's call).
    ClusterAuto {
        /// As in [`ChunkPolicy::Waves`], for the equal-chunk candidate.
        overhead_tiles: u32,
    },
    /// `Waves { overhead_tiles }`'s list, except where it cuts every segment into exactly
    /// two chunks: there the segments' halves (⌈written / 2⌉ slots rounded up to the key
    /// tile, [`DecodeWork::build_clusters`]`(.., 2, ..)`) run as thread-block clusters of
    /// 2, provided their longest item is the waves chunk, so the launch has the same
    /// number of blocks and no longer one, and the merge moves to distributed shared
    /// memory. On the H200 (benches/RESULTS.md, "Call 10") that was faster on every such
    /// layer (17 of 17, 0.4–3.3 µs), while clusters of 4 and 8 were slower even item for
    /// item.
    WavesPairs {
        /// As in [`ChunkPolicy::Waves`].
        overhead_tiles: u32,
    },
    /// `Waves { overhead_tiles }`'s list with its segments packed whole into thread-block
    /// clusters ([`DecodeWork::build_packed`]), so the chunks of a segment merge through
    /// distributed shared memory (no partials, arrival counter or global merge), where
    /// that fits: per cluster size C in 8, 4, 2 and 16 (the latter for the `h` kernels,
    /// where [`DecodeSlots::wide_blocks`] is not 0), the shortest chunk from the waves chunk up
    /// to [`PACKED_EXTRA_TILES`] key tiles longer that cuts no segment into more than C
    /// items and whose list fits [`DecodeSlots::packed_fit`]; of those, the one with the
    /// shortest longest item (ties: the larger C up to 8; 16 only if strictly shorter).
    /// Otherwise (a segment of more chunks, or too many blocks) `WavesPairs {
    /// overhead_tiles }`'s split. On the H200 (benches/RESULTS.md, decode call 16):
    /// clusters of 4 and 8 filling more than ~91 % of the resident clusters lost 2–19 µs
    /// (some clusters wait), while below it packed lists beat the counter merge, also with
    /// up to 5 tiles longer chunks and fewer blocks at B = 4, 4k; 6 tiles or more longer at
    /// 16k lost.
    WavesPacked {
        /// As in [`ChunkPolicy::Waves`].
        overhead_tiles: u32,
    },
    /// Whole segments packed into clusters of `size` blocks (2 to [`MAX_CLUSTER`], or
    /// [`MAX_CLUSTER_WIDE`] for the `h` kernels), each
    /// in at most `size` items: the shortest chunk (a multiple of the key tile) whose list
    /// fits one wave of resident clusters; if none does, the one with the fewest items.
    Packed {
        /// Blocks per cluster, the most items a segment is cut into.
        size: u32,
    },
    /// `WavesPacked { overhead_tiles }`'s split, and where that is a plain list (equal
    /// chunks merged through L2, e.g. Llama-3-8B's one-wave lists at B = 4, 16k) each split
    /// segment's last chunk `last_extra` key tiles longer than its others
    /// ([`DecodeWork::build_last_longer`]; 0: the segment's tiles spread evenly), so the
    /// segment's other chunks publish their partials while it still streams. Opt-in
    /// (`waves:OVERHEAD:packed:last:TILES`): on the H200 (benches/RESULTS.md, decode
    /// "Session 24") it tied on Llama-3-8B at B = 4, 16k (−0.01 to −0.14 µs a layer in
    /// median at 1 tile, with or without the own-register merge; each further tile +0.5),
    /// gaining 0.3–0.5 µs only on the lists whose segments ended in a short chunk, which
    /// the spread (0, not yet measured) keeps without lengthening any item.
    WavesPackedLast {
        /// As in [`ChunkPolicy::Waves`].
        overhead_tiles: u32,
        /// Key tiles added to each split segment's last chunk (0: tiles spread evenly).
        last_extra: u32,
    },
}

/// The largest thread-block cluster the decode kernel merges in (CUDA's portable
/// cluster size; `MAX_CLUSTER` in templates/cuda/decode.cu.j2).
pub const MAX_CLUSTER: u32 = crate::lower::consts::CUDA_DECODE_PORTABLE_CLUSTER;

/// The largest cluster of the `h` decode kernels (`codegen::cuda::DecodeTuning::wide_clusters`;
/// their manifest's `tiles.cluster`): CUDA's non-portable 16 on sm_90. Packed lists
/// ([`DecodeWork::build_packed`]) take clusters of up to this size, and the cluster policies
/// consider it where [`DecodeSlots::wide_blocks`] says the kernel runs them.
pub const MAX_CLUSTER_WIDE: u32 = crate::lower::consts::CUDA_DECODE_WIDE_CLUSTER;

/// How a decode step's work is cut: equal chunks of `chunk` slots merged through global
/// memory (`cluster` = 1), or one thread-block cluster of `cluster` items per segment
/// (`chunk` is then the longest item, for executors that launch no clusters).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeSplit {
    /// Slots per chunk (a multiple of the key tile); with clusters, the longest item.
    pub chunk: u32,
    /// Blocks per thread-block cluster; 1 for a plain list merged through global memory.
    pub cluster: u32,
    /// Whole segments packed into clusters of `cluster` blocks, each cut into at most
    /// `cluster` items of at most `chunk` slots ([`DecodeWork::build_packed`]).
    pub packed: bool,
    /// On a plain list (`cluster` 1, not packed): key tiles by which each split segment's
    /// last chunk is longer than its others ([`DecodeWork::build_last_longer`]; `Some(0)`:
    /// the segment's tiles spread evenly over its chunks); `None`: equal chunks of `chunk`
    /// slots, the last one shorter ([`DecodeWork::build`]).
    pub last_extra: Option<u32>,
}

impl DecodeSplit {
    /// Equal chunks of `chunk` slots, merged through global memory.
    pub fn chunks(chunk: u32) -> DecodeSplit {
        DecodeSplit {
            chunk,
            cluster: 1,
            packed: false,
            last_extra: None,
        }
    }

    /// Chunks of `chunk` slots whose split segments' last chunk is `extra` key tiles longer
    /// ([`DecodeWork::build_last_longer`]), merged through global memory.
    pub fn last_longer(chunk: u32, extra: u32) -> DecodeSplit {
        DecodeSplit {
            last_extra: Some(extra),
            ..DecodeSplit::chunks(chunk)
        }
    }

    /// One cluster of `size` items per segment ([`DecodeWork::build_clusters`]), whose
    /// longest item is `chunk`.
    pub fn clusters(size: u32, chunk: u32) -> DecodeSplit {
        DecodeSplit {
            chunk,
            cluster: size,
            packed: false,
            last_extra: None,
        }
    }

    /// Whole segments packed into clusters of `size` ([`DecodeWork::build_packed`]).
    pub fn packed(size: u32, chunk: u32) -> DecodeSplit {
        DecodeSplit {
            chunk,
            cluster: size,
            packed: true,
            last_extra: None,
        }
    }
}

/// Share of the resident clusters of 4 or 8 blocks a packed list may fill
/// ([`DecodeSlots::packed_fit`]).
pub const PACKED_FIT_PCT: u32 = 91;

/// Key tiles by which [`ChunkPolicy::WavesPacked`] may lengthen the waves chunk so that a
/// packed cluster list fits (decode call 16: up to 5 tiles longer won at B = 4, 4k, where
/// the merge weighs most; 6 or more lost at 16k).
pub const PACKED_EXTRA_TILES: u32 = 5;

/// Decode blocks the GPU holds at once: launched plainly, and as thread-block clusters
/// of 2, 4 and 8 (`cuOccupancyMaxActiveClusters` × size: a cluster must fit in one GPC,
/// so larger clusters lose blocks; H200, 4x3 kernel: 264, 264, 248, 240, decode call 11).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeSlots {
    /// Blocks resident at once launched plainly (SMs × resident blocks per SM).
    pub blocks: u32,
    /// Blocks resident as clusters of 2, 4 and 8.
    pub cluster_blocks: [u32; 3],
    /// Blocks resident as clusters of 16 ([`MAX_CLUSTER_WIDE`]), where the kernel merges
    /// in them (the `h` variant, manifest `tiles.cluster` 16); 0 otherwise, and then no
    /// policy builds clusters of more than 8.
    pub wide_blocks: u32,
}

impl DecodeSlots {
    /// From the plain count alone, with the H200's measured loss for clusters of 4 and 8
    /// (248 and 240 of 264 blocks): for executors that cannot ask the driver.
    pub fn estimate(blocks: u32) -> DecodeSlots {
        DecodeSlots {
            blocks,
            cluster_blocks: [
                blocks / 2 * 2,
                blocks * 248 / 264 / 4 * 4,
                blocks * 240 / 264 / 8 * 8,
            ],
            wide_blocks: 0,
        }
    }

    /// [`Self::estimate`] for a kernel that merges in clusters of up to `max_cluster`
    /// blocks: above 8, clusters of 16 are estimated at 224 of 264 blocks (14 clusters,
    /// the count GPCs of 18, 16 and 14 SMs at 2 blocks per SM would hold); the CUDA
    /// executor asks the driver instead.
    pub fn estimate_for(blocks: u32, max_cluster: u32) -> DecodeSlots {
        let mut s = Self::estimate(blocks);
        if max_cluster >= MAX_CLUSTER_WIDE {
            s.wide_blocks = blocks * 224 / 264 / MAX_CLUSTER_WIDE * MAX_CLUSTER_WIDE;
        }
        s
    }

    /// Blocks that a packed cluster list may use, as clusters of `size` (2, 4, 8 or 16): all
    /// resident ones for clusters of 2, [`PACKED_FIT_PCT`] % for 4, 8 and 16, whose lists
    /// slowed by 2–19 µs on the H200 when they filled 232–248 of 240–248 resident blocks
    /// (after the cache write, programmatic launch: some clusters then wait for a second
    /// wave), while up to 224 of 248 and 208 of 240 ran at full speed (decode call 16).
    pub fn packed_fit(&self, size: u32) -> u32 {
        let b = self.for_cluster(size);
        if size <= 2 {
            b
        } else {
            b * PACKED_FIT_PCT / 100 / size * size
        }
    }

    /// Blocks resident as clusters of `size` (1, 2, 4, 8 or 16; other sizes: the next
    /// larger measured one's count, rounded down to a multiple of `size`; above 16, 0).
    pub fn for_cluster(&self, size: u32) -> u32 {
        let b = match size {
            0 | 1 => return self.blocks,
            2 => self.cluster_blocks[0],
            3 | 4 => self.cluster_blocks[1],
            5..=8 => self.cluster_blocks[2],
            9..=16 => self.wide_blocks,
            _ => 0,
        };
        b / size * size
    }
}

/// Whole waves with 2 tiles of overhead per block: the wgpu executor's policy
/// ([`choose_chunk`]) and the CUDA executor's for MHA ([`cuda_chunk_policy`]). On the H200
/// (benches/RESULTS.md, call 4) it beat `balanced:2:50`, `balanced:2:100` and fixed
/// 1024-slot chunks on every configuration (equal on Vicuna-7B at B = 16, up to 18 % ahead
/// in geometric mean at B = 4).
pub const DEFAULT_CHUNK_POLICY: ChunkPolicy = ChunkPolicy::Waves { overhead_tiles: 2 };

/// The CUDA executor's policy for GQA layers (group ≥ 2): whole waves with 10 tiles of
/// overhead per block, whose segments go packed whole into thread-block clusters where
/// they fit ([`ChunkPolicy::WavesPacked`]; else the pairs rule, [`ChunkPolicy::WavesPairs`]).
/// Packed (benches/RESULTS.md, decode calls 16 and 17): Llama-3-8B 0.982 of waves:10:pairs'
/// time in geometric mean at B = 16, 4k (26 layers changed, 0.961–1.003) and 0.959 at
/// B = 4, 4k (21 layers, 0.934–0.999); the 16k lists barely change (one layer, 1.005). The
/// CUDA engine keeps the pairs rule (its captured graphs need a fixed item count, which
/// packing does not give while rings fill). A GQA block writes and merges partials of the whole
/// group, so an extra wave costs it more than an MHA block; on the H200 (benches/RESULTS.md,
/// calls 7 and 8) waves:10 turned Llama-3-8B's multi-wave lists of short chunks into one
/// wave of longer ones (layers 25, 28, 29 at B = 16, 4k: 12–13 % faster) and was never
/// slower on any layer at B = 16 or 4, 4k or 16k, while on Vicuna-7B (MHA) it lost 0.4 % in
/// geometric mean at B = 16 (up to 2.3 % per layer). The pairs (call 10): Llama-3-8B
/// layers 0, 6, 8, 10, 13–15 at B = 16, 4k, 1.5–3.3 % faster, no other layer changed.
pub const CUDA_CHUNK_POLICY_GQA: ChunkPolicy = ChunkPolicy::WavesPacked { overhead_tiles: 10 };

/// The CUDA executor's policy for MHA layers (group 1): `waves:2:pairs`, the waves:2 list
/// ([`DEFAULT_CHUNK_POLICY`]) with its two-chunk segments run as clusters of 2. On the
/// H200 (benches/RESULTS.md, decode call 11) it passed cuda_check on the Vicuna-7B plan in
/// bf16 and f16 and was never slower than waves:2 on any layer (B = 16 and 4, 4k and 16k;
/// up to 3.6 % faster at B = 4, 4k). `waves:2:packed` lost on Vicuna-7B at B = 4, 4k
/// (1.017 in geometric mean over 21 layers, up to 1.070; decode call 17: its clusters of 8
/// and longer chunks cost more than an MHA block's cheap merge saves).
pub const CUDA_CHUNK_POLICY_MHA: ChunkPolicy = ChunkPolicy::WavesPairs { overhead_tiles: 2 };

/// The CUDA executor's chunk policy (`runtime::cuda`, the CUDA engine) for a model whose
/// GQA group (query heads per KV head) is `group_size`. [`DEFAULT_CHUNK_POLICY`] stays the
/// wgpu executor's, whose workgroups were not measured under these policies.
pub fn cuda_chunk_policy(group_size: u32) -> ChunkPolicy {
    if group_size > 1 {
        CUDA_CHUNK_POLICY_GQA
    } else {
        CUDA_CHUNK_POLICY_MHA
    }
}

impl std::fmt::Display for ChunkPolicy {
    /// `waves:OVERHEAD`, `balanced:OVERHEAD:TAIL_PCT`, `stream:SAT_PCT:WAVE_TILES:MERGE_TILES`
    /// or the fixed size.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChunkPolicy::Waves { overhead_tiles } => write!(f, "waves:{overhead_tiles}"),
            ChunkPolicy::Balanced {
                overhead_tiles,
                tail_pct,
            } => write!(f, "balanced:{overhead_tiles}:{tail_pct}"),
            ChunkPolicy::Fixed(c) => write!(f, "{c}"),
            ChunkPolicy::Stream {
                sat_pct,
                wave_tiles,
                merge_tiles,
            } => write!(f, "stream:{sat_pct}:{wave_tiles}:{merge_tiles}"),
            ChunkPolicy::Cluster { size } => write!(f, "cluster:{size}"),
            ChunkPolicy::ClusterAuto { overhead_tiles } => {
                write!(f, "cluster:auto:{overhead_tiles}")
            }
            ChunkPolicy::WavesPairs { overhead_tiles } => {
                write!(f, "waves:{overhead_tiles}:pairs")
            }
            ChunkPolicy::WavesPacked { overhead_tiles } => {
                write!(f, "waves:{overhead_tiles}:packed")
            }
            ChunkPolicy::Packed { size } => write!(f, "packed:{size}"),
            ChunkPolicy::WavesPackedLast {
                overhead_tiles,
                last_extra,
            } => write!(f, "waves:{overhead_tiles}:packed:last:{last_extra}"),
        }
    }
}

impl std::str::FromStr for ChunkPolicy {
    type Err = String;

    /// Parses what [`Display`](std::fmt::Display) writes.
    fn from_str(v: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "chunk policy `{v}`: expected SLOTS, waves:OVERHEAD, waves:OVERHEAD:pairs, waves:OVERHEAD:packed, \
                 waves:OVERHEAD:packed:last:TILES, \
                 balanced:OVERHEAD:TAIL_PCT, stream:SAT_PCT:WAVE_TILES:MERGE_TILES (SAT_PCT 1 to 100), \
                 cluster:SIZE (SIZE 2 to {MAX_CLUSTER_WIDE}; above {MAX_CLUSTER} only for the `h` \
                 kernels), packed:SIZE or cluster:auto:OVERHEAD"
            )
        };
        let num = |x: &str| x.parse::<u32>().map_err(|_| bad());
        // A cluster holds 2 to MAX_CLUSTER_WIDE blocks (`cluster:SIZE`, `packed:SIZE`);
        // the executor refuses more than its kernel's `tiles.cluster`.
        let cluster_size = |x: &str| {
            num(x).and_then(|c| {
                if (2..=MAX_CLUSTER_WIDE).contains(&c) {
                    Ok(c)
                } else {
                    Err(bad())
                }
            })
        };
        let parts: Vec<&str> = v.split(':').collect();
        match parts.as_slice() {
            [c] => Ok(ChunkPolicy::Fixed(num(c)?.max(1))),
            ["waves", o] => Ok(ChunkPolicy::Waves {
                overhead_tiles: num(o)?,
            }),
            ["waves", o, "pairs"] => Ok(ChunkPolicy::WavesPairs {
                overhead_tiles: num(o)?,
            }),
            ["waves", o, "packed"] => Ok(ChunkPolicy::WavesPacked {
                overhead_tiles: num(o)?,
            }),
            ["waves", o, "packed", "last", x] => Ok(ChunkPolicy::WavesPackedLast {
                overhead_tiles: num(o)?,
                last_extra: num(x)?,
            }),
            ["packed", c] => Ok(ChunkPolicy::Packed {
                size: cluster_size(c)?,
            }),
            ["balanced", o, t] => Ok(ChunkPolicy::Balanced {
                overhead_tiles: num(o)?,
                tail_pct: num(t)?,
            }),
            ["stream", sat, w, m] => {
                let sat_pct = num(sat)?;
                if !(1..=100).contains(&sat_pct) {
                    return Err(bad());
                }
                Ok(ChunkPolicy::Stream {
                    sat_pct,
                    wave_tiles: num(w)?,
                    merge_tiles: num(m)?,
                })
            }
            ["cluster", "auto", o] => Ok(ChunkPolicy::ClusterAuto {
                overhead_tiles: num(o)?,
            }),
            ["cluster", c] => Ok(ChunkPolicy::Cluster {
                size: cluster_size(c)?,
            }),
            _ => Err(bad()),
        }
    }
}

/// Chunk size for a step under [`DEFAULT_CHUNK_POLICY`] (see [`choose_chunk_with`]).
pub fn choose_chunk(
    layout: &CacheLayout,
    row_pos: &[u32],
    key_tile: u32,
    concurrent_blocks: u32,
) -> u32 {
    choose_chunk_with(
        DEFAULT_CHUNK_POLICY,
        layout,
        row_pos,
        key_tile,
        concurrent_blocks,
    )
}

/// Chunk size for rows at `row_pos` over `layout`: the multiple of `key_tile` (up to 64
/// tiles) that minimises `policy`'s modelled time; ties go to the larger chunk, so the
/// partial states and merges stay few.
pub fn choose_chunk_with(
    policy: ChunkPolicy,
    layout: &CacheLayout,
    row_pos: &[u32],
    key_tile: u32,
    concurrent_blocks: u32,
) -> u32 {
    let key_tile = key_tile.max(1);
    match policy {
        ChunkPolicy::Fixed(c) => return c.max(1).div_ceil(key_tile) * key_tile,
        ChunkPolicy::Cluster { .. }
        | ChunkPolicy::ClusterAuto { .. }
        | ChunkPolicy::Packed { .. } => {
            // Without the GQA group: the GQA model (the larger per-chunk costs).
            return choose_split(policy, layout, row_pos, key_tile, concurrent_blocks, 2).chunk;
        }
        _ => {}
    }
    let blocks = concurrent_blocks.max(1) as f64;
    let written: Vec<u32> = written_per_segment(layout, row_pos).collect();
    let total: f64 = written.iter().map(|&w| f64::from(w)).sum();
    let mut best = (f64::INFINITY, key_tile);
    for m in 1..=64u32 {
        let chunk = key_tile * m;
        let items: u64 = written
            .iter()
            .map(|&w| u64::from(w.div_ceil(chunk).max(1)))
            .sum();
        let cost = match policy {
            ChunkPolicy::Waves { overhead_tiles }
            | ChunkPolicy::WavesPairs { overhead_tiles }
            | ChunkPolicy::WavesPacked { overhead_tiles }
            | ChunkPolicy::WavesPackedLast { overhead_tiles, .. } => {
                (items as f64 / blocks).ceil() * f64::from(chunk + overhead_tiles * key_tile)
            }
            ChunkPolicy::Balanced {
                overhead_tiles,
                tail_pct,
            } => {
                (total + items as f64 * f64::from(overhead_tiles * key_tile)) / blocks
                    + f64::from(tail_pct) / 100.0 * f64::from(chunk)
            }
            ChunkPolicy::Stream {
                sat_pct,
                wave_tiles,
                merge_tiles,
            } => stream_time(
                &written,
                chunk,
                concurrent_blocks.max(1),
                f64::from(sat_pct.clamp(1, 100)) / 100.0,
                f64::from(wave_tiles * key_tile),
                f64::from(merge_tiles * key_tile),
            ),
            ChunkPolicy::Fixed(_)
            | ChunkPolicy::Cluster { .. }
            | ChunkPolicy::ClusterAuto { .. }
            | ChunkPolicy::Packed { .. } => {
                unreachable!("returned above")
            }
        };
        if cost <= best.0 {
            best = (cost, chunk);
        }
    }
    best.1
}

/// How a step is cut under `policy` for a model whose GQA group is `group_size`: the
/// cluster policies' split, or equal chunks of [`choose_chunk_with`]'s size. Resident
/// clusters estimated from `concurrent_blocks` ([`DecodeSlots::estimate`]); executors
/// that can ask the driver call [`choose_split_in`].
pub fn choose_split(
    policy: ChunkPolicy,
    layout: &CacheLayout,
    row_pos: &[u32],
    key_tile: u32,
    concurrent_blocks: u32,
    group_size: u32,
) -> DecodeSplit {
    choose_split_in(
        policy,
        layout,
        row_pos,
        key_tile,
        DecodeSlots::estimate(concurrent_blocks),
        group_size,
    )
}

/// [`choose_split`] on a GPU that holds `slots` decode blocks at once.
pub fn choose_split_in(
    policy: ChunkPolicy,
    layout: &CacheLayout,
    row_pos: &[u32],
    key_tile: u32,
    slots: DecodeSlots,
    group_size: u32,
) -> DecodeSplit {
    let key_tile = key_tile.max(1);
    let concurrent_blocks = slots.blocks;
    let clustered = |size: u32| {
        DecodeSplit::clusters(
            size,
            DecodeWork::build_clusters(layout, row_pos, size, key_tile).chunk,
        )
    };
    // The `waves` chunk the pairs and packed policies start from.
    let waves_chunk = |overhead_tiles| {
        choose_chunk_with(
            ChunkPolicy::Waves { overhead_tiles },
            layout,
            row_pos,
            key_tile,
            concurrent_blocks,
        )
    };
    match policy {
        ChunkPolicy::Cluster { size } => clustered(size.clamp(1, MAX_CLUSTER_WIDE)),
        ChunkPolicy::WavesPairs { overhead_tiles } => {
            let chunk = waves_chunk(overhead_tiles);
            let pairs = DecodeWork::build(layout, row_pos, chunk)
                .seg_chunks
                .iter()
                .all(|&n| n == 2)
                && DecodeWork::build_clusters(layout, row_pos, 2, key_tile).chunk == chunk;
            DecodeSplit {
                chunk,
                cluster: if pairs { 2 } else { 1 },
                packed: false,
                last_extra: None,
            }
        }
        ChunkPolicy::WavesPacked { overhead_tiles } => {
            let chunk = waves_chunk(overhead_tiles);
            let written: Vec<u32> = written_per_segment(layout, row_pos).collect();
            let most = |c: u32| written.iter().map(|w| w.div_ceil(c)).max().unwrap_or(0);
            if most(chunk) <= 1 {
                // No segment is split: nothing to merge.
                return DecodeSplit::chunks(chunk);
            }
            // Per cluster size, the shortest chunk from the waves chunk up to
            // PACKED_EXTRA_TILES longer whose packed list fits; then the candidate with
            // the shortest longest item, ties to the larger cluster of at most 8: clusters
            // of 16 (last) only where their longest item is strictly shorter (the same
            // items in clusters of 16 instead of 8 ran slower, session 19).
            let mut best: Option<(u32, DecodeSplit)> = None;
            for size in [MAX_CLUSTER, 4, 2, MAX_CLUSTER_WIDE] {
                let fit = slots.packed_fit(size);
                if fit == 0 {
                    // Clusters of 16 where the kernel does not merge in them.
                    continue;
                }
                for extra in 0..=PACKED_EXTRA_TILES {
                    let c = chunk + extra * key_tile;
                    if most(c) > size {
                        continue;
                    }
                    let w = DecodeWork::build_packed(layout, row_pos, size, c, key_tile);
                    if w.n_items() <= fit {
                        if best.is_none_or(|(longest, _)| w.chunk < longest) {
                            best = Some((w.chunk, DecodeSplit::packed(size, c)));
                        }
                        break;
                    }
                }
            }
            match best {
                Some((_, split)) => split,
                // Whatever the pairs rule makes of the waves list (clusters of 2 over
                // several waves where every segment is two chunks).
                None => choose_split_in(
                    ChunkPolicy::WavesPairs { overhead_tiles },
                    layout,
                    row_pos,
                    key_tile,
                    slots,
                    group_size,
                ),
            }
        }
        ChunkPolicy::WavesPackedLast {
            overhead_tiles,
            last_extra,
        } => {
            let split = choose_split_in(
                ChunkPolicy::WavesPacked { overhead_tiles },
                layout,
                row_pos,
                key_tile,
                slots,
                group_size,
            );
            if split.cluster <= 1 && !split.packed {
                DecodeSplit::last_longer(split.chunk, last_extra)
            } else {
                split
            }
        }
        ChunkPolicy::Packed { size } => {
            let size = size.clamp(2, MAX_CLUSTER_WIDE);
            let fit = slots.for_cluster(size);
            let longest = written_per_segment(layout, row_pos).max().unwrap_or(0);
            let tiles = longest.div_ceil(size).div_ceil(key_tile).max(1);
            let most = longest.div_ceil(key_tile).max(tiles);
            let mut fewest = (u32::MAX, tiles * key_tile);
            for m in tiles..=most {
                let n = DecodeWork::build_packed(layout, row_pos, size, m * key_tile, key_tile)
                    .n_items();
                if n <= fit {
                    return DecodeSplit::packed(size, m * key_tile);
                }
                if n < fewest.0 {
                    fewest = (n, m * key_tile);
                }
            }
            DecodeSplit::packed(size, fewest.1)
        }
        ChunkPolicy::ClusterAuto { overhead_tiles } => {
            let model = FluidModel::h200(group_size);
            let blocks = concurrent_blocks.max(1);
            let chunk = choose_chunk_with(
                ChunkPolicy::Waves { overhead_tiles },
                layout,
                row_pos,
                key_tile,
                blocks,
            );
            let mut best = (
                model.time_us(&DecodeWork::build(layout, row_pos, chunk), 1, blocks),
                DecodeSplit::chunks(chunk),
            );
            for size in [2, 4, MAX_CLUSTER] {
                let work = DecodeWork::build_clusters(layout, row_pos, size, key_tile);
                let t = model.time_us(&work, size, blocks);
                if t < best.0 {
                    best = (t, DecodeSplit::clusters(size, work.chunk));
                }
            }
            best.1
        }
        _ => DecodeSplit::chunks(choose_chunk_with(
            policy,
            layout,
            row_pos,
            key_tile,
            concurrent_blocks,
        )),
    }
}

/// A fluid model of one decode launch (benches/decode-h200/chunk_model.py, which fits
/// it): items start in order on `blocks` block slots (a cluster's items together, when
/// as many slots are free); each spends `first_us` (work item, first tiles' latency),
/// then streams its slots at min(`block_rate`, `rate` / n) slots per µs while n blocks
/// stream, then writes its state: equal chunks `write_us` (half for a segment of one
/// chunk; the segment's last chunk adds the merge `merge_us` + `merge_chunk_us` per
/// chunk), a cluster `cluster_us` once its last block has streamed (its blocks hold
/// their slots until then); plus `launch_us` per launch. Slots are of head_dim 128 in
/// 16-bit storage (512 bytes of K and V).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FluidModel {
    /// Fixed cost of one launch, µs.
    pub launch_us: f64,
    /// An item's start before it streams (reading its work item, the first tiles'
    /// latency), µs.
    pub first_us: f64,
    /// All blocks' streaming rate together (the memory's), slots per µs.
    pub rate: f64,
    /// One block's streaming rate cap (bytes in flight / latency), slots per µs.
    pub block_rate: f64,
    /// An equal chunk's partial-state write, µs (half for a segment of one chunk).
    pub write_us: f64,
    /// The merge a split segment's last chunk runs, fixed part, µs.
    pub merge_us: f64,
    /// The merge's cost per chunk of the segment, µs.
    pub merge_chunk_us: f64,
    /// A cluster's merge through distributed shared memory once its last block has
    /// streamed, µs.
    pub cluster_us: f64,
}

impl FluidModel {
    /// The H200 parameters fitted to calls 4 and 6 (`benches/decode-h200/chunk-model-params.json`,
    /// 2.1 % rms) for MHA (`group_size` 1) or GQA; `cluster_us` fitted to call 10's
    /// cluster timings (`chunk_model.py fitcluster`: 3.2 µs MHA, 4.3 µs GQA, but 5.6 % and
    /// 7.9 % rms: the model lacks what made clusters of 4 and 8 slow, most likely fewer
    /// clusters resident at once than their blocks would allow).
    pub fn h200(group_size: u32) -> FluidModel {
        let slot = 512.0;
        let (write_us, block_bytes, merge_us, merge_chunk_us, cluster_us) = if group_size > 1 {
            (1.765, 45_186.0, 2.001, 0.0613, 4.3)
        } else {
            (0.276, 60_147.0, 2.460, 0.1073, 3.2)
        };
        FluidModel {
            launch_us: 3.48,
            first_us: 1.04,
            rate: 4_495_558.0 / slot,
            block_rate: block_bytes / slot,
            write_us,
            merge_us,
            merge_chunk_us,
            cluster_us,
        }
    }

    /// Modelled µs of one launch of `work` (items of one segment consecutive), in
    /// clusters of `cluster` items (1: equal chunks merged through global memory).
    pub fn time_us(&self, work: &DecodeWork, cluster: u32, blocks: u32) -> f64 {
        use std::cmp::Reverse;
        use std::collections::BinaryHeap;
        // Times and byte counts are non-negative, so their bit patterns order as they do.
        let key = |x: f64| x.max(0.0).to_bits();
        let n = work.items.len();
        let group = cluster.max(1) as usize;
        let mut seg_of = Vec::with_capacity(n);
        let mut left: Vec<u32> = Vec::new();
        let mut k = 0;
        for it in &work.items {
            if k == 0 {
                left.push(it[7].max(1));
                k = it[7].max(1);
            }
            seg_of.push(left.len() - 1);
            k -= 1;
        }
        let mut fixed: BinaryHeap<Reverse<(u64, usize, bool)>> = BinaryHeap::new();
        let mut stream: BinaryHeap<Reverse<(u64, usize)>> = BinaryHeap::new();
        let (mut t, mut v) = (0.0f64, 0.0f64);
        let (mut next, mut free) = (0usize, blocks.max(group as u32) as usize);
        let start = |t: f64,
                     next: &mut usize,
                     free: &mut usize,
                     fixed: &mut BinaryHeap<Reverse<(u64, usize, bool)>>| {
            while *next < n && *free >= group {
                for i in *next..(*next + group).min(n) {
                    fixed.push(Reverse((key(t + self.first_us), i, false)));
                }
                *next += group;
                *free -= group;
            }
        };
        start(0.0, &mut next, &mut free, &mut fixed);
        loop {
            let rate = if stream.is_empty() {
                0.0
            } else {
                self.block_rate.min(self.rate / stream.len() as f64)
            };
            let tf = fixed
                .peek()
                .map_or(f64::INFINITY, |Reverse((x, _, _))| f64::from_bits(*x));
            let ts = stream.peek().map_or(f64::INFINITY, |Reverse((x, _))| {
                t + (f64::from_bits(*x) - v) / rate
            });
            if tf.is_infinite() && ts.is_infinite() {
                break;
            }
            if tf <= ts {
                v += rate * (tf - t);
                t = tf;
                let Reverse((_, i, done)) = fixed.pop().expect("peeked");
                if done {
                    free += 1;
                    start(t, &mut next, &mut free, &mut fixed);
                } else {
                    let slots = f64::from(work.items[i][2] - work.items[i][1]);
                    stream.push(Reverse((key(v + slots), i)));
                }
            } else {
                v += rate * (ts - t);
                t = ts;
                let Reverse((_, i)) = stream.pop().expect("peeked");
                let s = seg_of[i];
                left[s] -= 1;
                if group > 1 {
                    if left[s] == 0 {
                        let first = work.items[i][3] as usize;
                        for j in first..first + group {
                            fixed.push(Reverse((key(t + self.cluster_us), j, true)));
                        }
                    }
                } else {
                    let chunks = work.items[i][7];
                    let mut cost = if chunks > 1 {
                        self.write_us
                    } else {
                        0.5 * self.write_us
                    };
                    if chunks > 1 && left[s] == 0 {
                        cost += self.merge_us + self.merge_chunk_us * f64::from(chunks);
                    }
                    fixed.push(Reverse((key(t + cost), i, true)));
                }
            }
        }
        t + self.launch_us
    }
}

/// [`ChunkPolicy::Stream`]'s modelled time, in units of one block streaming one slot at
/// its own rate, for segments of `written` slots cut into chunks of `chunk`: items in
/// order to the least-loaded of `blocks` slots (list scheduling, as the block scheduler
/// hands out blocks in index order), then the slots' loads drain together, each at
/// `min(1, sat · blocks / active)` slots per unit, where `active` is the number of slots
/// still streaming (a fluid model: the memory's rate shared, capped per block); plus
/// `wave_cost` per wave of `blocks` items and `merge_cost` if a segment is split.
/// O(items · log blocks).
fn stream_time(
    written: &[u32],
    chunk: u32,
    blocks: u32,
    sat: f64,
    wave_cost: f64,
    merge_cost: f64,
) -> f64 {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    let chunk = chunk.max(1);
    let blocks = blocks.max(1) as usize;
    let mut loads: Vec<u64> = Vec::with_capacity(blocks);
    let mut heap: BinaryHeap<Reverse<u64>> = BinaryHeap::with_capacity(blocks);
    let (mut items, mut split) = (0usize, false);
    for &w in written {
        let n = w.div_ceil(chunk).max(1);
        split |= n > 1;
        for c in 0..n {
            let len = u64::from(chunk.min(w - (c * chunk).min(w)));
            items += 1;
            if heap.is_empty() && loads.len() < blocks {
                loads.push(len);
            } else {
                // The first `blocks` items start at once; from then on, the least-loaded
                // slot takes the next item.
                if heap.is_empty() {
                    heap.extend(loads.drain(..).map(Reverse));
                }
                let Reverse(least) = heap.pop().expect("blocks > 0 slots");
                heap.push(Reverse(least + len));
            }
        }
    }
    if !heap.is_empty() {
        loads = heap.into_iter().map(|Reverse(l)| l).collect();
    }
    loads.sort_unstable();
    let shared = sat * blocks as f64;
    let (mut time, mut prev) = (0.0, 0u64);
    for (j, &l) in loads.iter().enumerate() {
        let active = (loads.len() - j) as f64;
        time += (l - prev) as f64 / (shared / active).min(1.0);
        prev = l;
    }
    time + items.div_ceil(blocks) as f64 * wave_cost + if split { merge_cost } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lower::Segment;

    fn layout(spans: &[u32]) -> CacheLayout {
        let mut offset = 0;
        let segments = spans
            .iter()
            .map(|&s| {
                let seg = Segment {
                    offset,
                    span: s,
                    sink: s.min(4),
                    ring: s - s.min(4),
                };
                offset += s;
                seg
            })
            .collect();
        CacheLayout {
            n_tokens: 1000,
            segments,
            row_slots: offset,
        }
    }

    #[test]
    fn items_cover_exactly_the_written_slots() {
        let l = layout(&[100, 7, 0]);
        let w = DecodeWork::build(&l, &[3, 500], 32);
        // row 0 (t = 3): 4 written slots in segments 0 and 1, none in segment 2
        assert_eq!(w.seg_chunks, vec![1, 1, 1, 4, 1, 1]);
        assert_eq!(w.items[0], [0, 0, 4, 0, 0, 100, 107, 1]);
        assert_eq!(w.items[2], [2, 0, 0, 2, 107, 0, 107, 1]);
        // row 1: segment 0 in chunks of 32 up to 100, each pointing at its first item
        let seg3: Vec<_> = w.items.iter().filter(|i| i[0] == 3).collect();
        assert_eq!(
            seg3.iter().map(|i| (i[1], i[2], i[3])).collect::<Vec<_>>(),
            vec![(0, 32, 3), (32, 64, 3), (64, 96, 3), (96, 100, 3)]
        );
        assert!(seg3.iter().all(|i| i[7] == 4));
        assert_eq!(w.n_items(), 9);
        assert_eq!(w.flat().len(), 72);
    }

    #[test]
    fn last_longer_items_cover_the_written_slots_with_the_last_longest() {
        // Segments of 1024, 1000 and 64 written slots, 4 rows, chunks of 256, 2 tiles more
        // for the last chunk.
        let l = layout(&[1024, 1000, 64]);
        let rows = [5000; 4];
        let w = DecodeWork::build_last_longer(&l, &rows, 256, 2, 64);
        let equal = DecodeWork::build(&l, &rows, 256);
        // The same item count per segment as the equal chunks.
        assert_eq!(w.seg_chunks, equal.seg_chunks);
        for seg in 0..w.seg_chunks.len() as u32 {
            let its: Vec<_> = w.items.iter().filter(|i| i[0] == seg).collect();
            let written = [1024, 1000, 64][seg as usize % 3];
            // Consecutive, in slot order, covering [0, written) once, none empty.
            let mut c = 0;
            for i in &its {
                assert_eq!(i[1], c);
                assert!(i[2] > i[1]);
                assert_eq!(i[7], its.len() as u32);
                c = i[2];
            }
            assert_eq!(c, written);
        }
        // 1024 slots = 16 tiles in 4 items: the last ⌊14 / 4⌋ + 2 = 5 tiles, the others
        // 4, 4, 3.
        let s0: Vec<u32> = w.items[..4].iter().map(|i| i[2] - i[1]).collect();
        assert_eq!(s0, vec![256, 256, 192, 320]);
        assert_eq!(w.chunk, 320);
        // 1000 slots = 16 tiles (the last partial): the last item 5 tiles, ending at 1000.
        let s1: Vec<u32> = w.items[4..8].iter().map(|i| i[2] - i[1]).collect();
        assert_eq!(s1, vec![256, 256, 192, 296]);
        // Fewer tiles than items need: 3 tiles in 3 items with 2 extra: one item of 2, 1.
        let w = DecodeWork::build_last_longer(&layout(&[192]), &[5000], 64, 2, 64);
        assert_eq!(w.seg_chunks, vec![2]);
        assert_eq!(w.items[0][1..3], [0, 64]);
        assert_eq!(w.items[1][1..3], [64, 192]);
        // extra 0 spreads a segment's tiles evenly: 1000 slots (16 tiles) in 4 items of 4
        // tiles (the last 232 slots) where the equal chunks end with a 232-slot chunk
        // anyway; 1088 slots (17 tiles) in 5 items of 4, 4, 3, 3, 3 tiles, not 4 × 256 + 64.
        let w = DecodeWork::build_last_longer(&l, &rows, 256, 0, 64);
        assert_eq!(w.n_items(), equal.n_items());
        let s1: Vec<u32> = w.items[4..8].iter().map(|i| i[2] - i[1]).collect();
        assert_eq!(s1, vec![256, 256, 256, 232]);
        let w = DecodeWork::build_last_longer(&layout(&[1088]), &[5000], 256, 0, 64);
        let s: Vec<u32> = w.items.iter().map(|i| i[2] - i[1]).collect();
        assert_eq!(s, vec![256, 256, 192, 192, 192]);
        assert_eq!(w.chunk, 256);
    }

    #[test]
    fn waves_packed_last_lengthens_only_plain_lists() {
        let slots = DecodeSlots::estimate(264);
        let policy: ChunkPolicy = "waves:10:packed:last:3".parse().unwrap();
        assert_eq!(policy.to_string(), "waves:10:packed:last:3");
        // 4 rows of 17408-slot segments: the waves list, plain, its last chunks 3 tiles longer.
        let rows4 = vec![100_000; 4];
        let l = layout(&[17408; 8]);
        let s = choose_split_in(policy, &l, &rows4, 64, slots, 4);
        let plain = choose_split_in(
            ChunkPolicy::WavesPacked { overhead_tiles: 10 },
            &l,
            &rows4,
            64,
            slots,
            4,
        );
        assert_eq!(s, DecodeSplit::last_longer(plain.chunk, 3));
        assert_eq!(s.last_extra, Some(3));
        assert_eq!(plain.last_extra, None);
        let w = DecodeWork::build_split(&l, &rows4, s, 64);
        assert_eq!(
            w.n_items(),
            DecodeWork::build_split(&l, &rows4, plain, 64).n_items()
        );
        // Packed lists are kept as they are.
        let rows16 = vec![100_000; 16];
        let l25 = layout(&[640, 4096, 640, 4096, 4096, 640, 640, 640]);
        assert_eq!(
            choose_split_in(policy, &l25, &rows16, 64, slots, 4),
            DecodeSplit::packed(4, 1408)
        );
    }

    #[test]
    fn chunk_splits_few_segments_and_keeps_many_whole() {
        let l = layout(&[4096]);
        // one long segment on 132 slots: split into key tiles
        assert_eq!(choose_chunk(&l, &[5000], 64, 132), 64);
        // 512 segments of 4096 slots: the largest chunk
        let rows = vec![5000; 512];
        assert_eq!(choose_chunk(&l, &rows, 64, 132), 64 * 64);
        assert_eq!(choose_chunk(&l, &rows, 64, 132) % 64, 0);
    }

    #[test]
    fn balanced_policy_trades_tail_against_block_overhead() {
        let l = layout(&[4096]);
        let rows = vec![5000; 512];
        let waves = ChunkPolicy::Waves { overhead_tiles: 2 };
        let balanced = ChunkPolicy::Balanced {
            overhead_tiles: 2,
            tail_pct: 100,
        };
        // One wave of whole segments costs a 4096-slot tail; the balanced model cuts them.
        assert_eq!(choose_chunk_with(waves, &l, &rows, 64, 132), 4096);
        let c = choose_chunk_with(balanced, &l, &rows, 64, 132);
        assert!(c < 4096 && c.is_multiple_of(64), "{c}");
        // No tail cost: only the overhead counts, so whole segments.
        let no_tail = ChunkPolicy::Balanced {
            overhead_tiles: 2,
            tail_pct: 0,
        };
        assert_eq!(choose_chunk_with(no_tail, &l, &rows, 64, 132), 4096);
        assert_eq!(
            choose_chunk_with(ChunkPolicy::Fixed(100), &l, &rows, 64, 132),
            128
        );
    }

    #[test]
    fn stream_policy_fills_one_wave_with_bandwidth_bound_chunks() {
        let stream = ChunkPolicy::Stream {
            sat_pct: 38,
            wave_tiles: 4,
            merge_tiles: 3,
        };
        let choose = |spans: &[u32], rows: usize| {
            choose_chunk_with(stream, &layout(spans), &vec![100_000; rows], 64, 264)
        };
        // Llama-3-8B layer 25 at 4k, 16 rows: waves:2 cut it into 784 items of 320 slots
        // (3 waves of 264 blocks); the stream model keeps one wave (224 items) of chunks
        // long enough for the memory's rate, never whole 4096-slot segments (128 blocks
        // with five of eight short: the long ones would drain at one block's rate).
        let l25 = [640, 4096, 640, 4096, 4096, 640, 640, 640];
        assert_eq!(choose(&l25, 16), 1408);
        let w = DecodeWork::build(&layout(&l25), &[100_000; 16], 1408);
        assert_eq!(w.n_items(), 224);
        // 128 equal segments: 128 blocks already saturate the memory (sat 38 % of 264 =
        // 100), so whole segments and no merge.
        assert_eq!(choose(&[4096], 128), 4096);
        // One segment on the whole GPU: key tiles, every block streams.
        assert_eq!(choose(&[4096], 1), 64);
        // Many segments: whole segments, waves of full blocks.
        assert_eq!(choose(&[4096], 512), 4096);
    }

    #[test]
    fn cuda_gqa_policy_prefers_one_wave_of_longer_chunks() {
        assert_eq!(cuda_chunk_policy(1), CUDA_CHUNK_POLICY_MHA);
        assert_eq!(
            CUDA_CHUNK_POLICY_MHA,
            ChunkPolicy::WavesPairs { overhead_tiles: 2 }
        );
        assert_eq!(cuda_chunk_policy(4), CUDA_CHUNK_POLICY_GQA);
        assert_eq!(
            CUDA_CHUNK_POLICY_GQA,
            ChunkPolicy::WavesPacked { overhead_tiles: 10 }
        );
        // Llama-3-8B layers 25 and 28 at 4k, 16 rows, 264 resident blocks: waves:2 cuts
        // 320- and 704-slot chunks over 3 and 2 waves, the GQA policy one wave.
        let rows = vec![100_000; 16];
        for (spans, old, new) in [
            ([640, 4096, 640, 4096, 4096, 640, 640, 640], 320, 1408),
            ([640, 640, 4096, 4096, 4096, 4096, 4096, 640], 704, 2048),
        ] {
            let l = layout(&spans);
            let pick = |p| choose_chunk_with(p, &l, &rows, 64, 264);
            assert_eq!(pick(cuda_chunk_policy(1)), old);
            assert_eq!(pick(cuda_chunk_policy(4)), new);
            assert!(DecodeWork::build(&l, &rows, new).n_items() <= 264);
        }
    }

    #[test]
    fn clusters_cover_the_written_slots_in_aligned_segments() {
        let l = layout(&[100, 7, 0]);
        for size in [2, 4, MAX_CLUSTER] {
            let w = DecodeWork::build_clusters(&l, &[3, 500], size, 16);
            assert_eq!(w.n_items(), 6 * size);
            assert_eq!(w.seg_chunks, vec![size; 6]);
            for (s, seg) in w.items.chunks(size as usize).enumerate() {
                let first = s as u32 * size;
                // One cluster per segment: aligned, consecutive, covering [0, written).
                assert!(seg
                    .iter()
                    .all(|i| i[0] == s as u32 && i[3] == first && i[7] == size));
                let written = written_slots([100, 7, 0][s % 3], [3, 500][s / 3]);
                assert_eq!(seg[0][1], 0);
                for p in seg.windows(2) {
                    assert_eq!(
                        p[0][2], p[1][1],
                        "{size}: items of a segment follow each other"
                    );
                }
                assert_eq!(seg[size as usize - 1][2], written);
                assert!(seg
                    .iter()
                    .all(|i| i[2] - i[1] <= w.chunk && (i[1] % 16 == 0 || i[1] == written)));
            }
        }
        // 100 slots in 8 blocks of key tiles of 16: 7 chunks of 16 and one empty.
        let w = DecodeWork::build_clusters(&l, &[500], 8, 16);
        let seg0: Vec<_> = w.items[..8].iter().map(|i| i[2] - i[1]).collect();
        assert_eq!(seg0, vec![16, 16, 16, 16, 16, 16, 4, 0]);
        let split = DecodeSplit {
            chunk: 0,
            cluster: 4,
            packed: false,
            last_extra: None,
        };
        assert_eq!(
            DecodeWork::build_split(&l, &[500], split, 16),
            DecodeWork::build_clusters(&l, &[500], 4, 16)
        );
    }

    #[test]
    fn cluster_auto_policy_follows_the_fluid_model() {
        let rows4 = vec![100_000; 4];
        let rows16 = vec![100_000; 16];
        let auto = ChunkPolicy::ClusterAuto { overhead_tiles: 10 };
        // Llama-3-8B layer 0 at 4k, 4 rows (32 segments, 264 resident blocks): with the
        // cluster cost fitted to call 10 (4.3 µs for GQA), equal chunks of 512 and the
        // counter merge, as measured there (21.1 µs against 25.1 for clusters of 8).
        let l0 = [3200, 3200, 4480, 4480, 3200, 3200, 3200, 4480];
        let s = choose_split(auto, &layout(&l0), &rows4, 64, 264, 4);
        assert_eq!(
            s,
            DecodeSplit {
                chunk: 512,
                cluster: 1,
                packed: false,
                last_extra: None,
            }
        );
        let mut m = FluidModel::h200(4);
        let eq = DecodeWork::build(&layout(&l0), &rows4, 512);
        let cl = DecodeWork::build_clusters(&layout(&l0), &rows4, 8, 64);
        assert!(m.time_us(&cl, 8, 264) > m.time_us(&eq, 1, 264));
        // The merge the model charges a cluster decides: at the 1 µs first guessed, the
        // clusters of 8 (one wave, no partial writes or global merge) would win.
        m.cluster_us = 1.0;
        assert!(m.time_us(&cl, 8, 264) < m.time_us(&eq, 1, 264));
        // Many segments: equal chunks (whole segments), as Waves picks them.
        let rows64 = vec![100_000; 64];
        let s = choose_split(auto, &layout(&[4096; 8]), &rows64, 64, 264, 4);
        assert_eq!(
            s,
            DecodeSplit {
                chunk: 4096,
                cluster: 1,
                packed: false,
                last_extra: None,
            }
        );
        // A fixed size is kept; executors without clusters get its longest item.
        let s = choose_split(
            ChunkPolicy::Cluster { size: 2 },
            &layout(&l0),
            &rows16,
            64,
            264,
            4,
        );
        assert_eq!(
            s,
            DecodeSplit {
                chunk: 2240,
                cluster: 2,
                packed: false,
                last_extra: None,
            }
        );
        assert_eq!(
            choose_chunk_with(
                ChunkPolicy::Cluster { size: 2 },
                &layout(&l0),
                &rows16,
                64,
                264
            ),
            2240
        );
    }

    #[test]
    fn pairs_policy_clusters_only_lists_that_already_are_pairs() {
        let rows16 = vec![100_000; 16];
        let pairs = ChunkPolicy::WavesPairs { overhead_tiles: 10 };
        let split = |spans: &[u32]| choose_split(pairs, &layout(spans), &rows16, 64, 264, 4);
        // Llama-3-8B layer 8 at 4k, 16 rows: 128 segments of 4096 in halves of 2048, the
        // list waves:10 cuts anyway: the same items, launched as clusters of 2.
        assert_eq!(
            split(&[4096; 8]),
            DecodeSplit {
                chunk: 2048,
                cluster: 2,
                packed: false,
                last_extra: None,
            }
        );
        let l = layout(&[4096; 8]);
        assert_eq!(
            DecodeWork::build(&l, &rows16, 2048),
            DecodeWork::build_split(&l, &rows16, split(&[4096; 8]), 64)
        );
        // Segments of 3840 and 4096 (Vicuna-7B layer 7's spans): waves cuts 2048 + 1792,
        // the pairs 1920 + 1920; the same item count and longest item.
        let l7 = [3840, 4096, 3840, 4096, 3840, 4096, 3840, 4096];
        let s7 = split(&l7);
        assert_eq!(
            s7,
            DecodeSplit {
                chunk: 2048,
                cluster: 2,
                packed: false,
                last_extra: None,
            }
        );
        let w7 = DecodeWork::build_split(&layout(&l7), &rows16, s7, 64);
        assert_eq!(w7.items[0][1..3], [0, 1920]);
        assert_eq!(
            w7.n_items(),
            DecodeWork::build(&layout(&l7), &rows16, 2048).n_items()
        );
        // Layer 25 (segments of 640 and 4096): waves:10 cuts 1408-slot chunks, 1 to 3 per
        // segment; not pairs, so a plain launch of the same list.
        let l25 = [640, 4096, 640, 4096, 4096, 640, 640, 640];
        assert_eq!(
            split(&l25),
            DecodeSplit {
                chunk: 1408,
                cluster: 1,
                packed: false,
                last_extra: None,
            }
        );
        // Executors without clusters get the same chunk as waves:10.
        let waves = ChunkPolicy::Waves { overhead_tiles: 10 };
        for spans in [&[4096; 8][..], &l25[..]] {
            let l = layout(spans);
            assert_eq!(
                choose_chunk_with(pairs, &l, &rows16, 64, 264),
                choose_chunk_with(waves, &l, &rows16, 64, 264)
            );
        }
    }

    #[test]
    fn packed_clusters_hold_whole_segments() {
        let l = layout(&[100, 7, 0, 300]);
        for size in [2, 4, MAX_CLUSTER] {
            for chunk in [16, 48, 1000] {
                let rows = [3, 500, 60];
                let w = DecodeWork::build_packed(&l, &rows, size, chunk, 16);
                assert_eq!(w.n_items() % size, 0, "{size}/{chunk}: whole clusters");
                let mut covered = [0u32; 12];
                let mut i = 0;
                while i < w.items.len() {
                    let it = w.items[i];
                    let (seg, n) = (it[0] as usize, it[7] as usize);
                    assert_eq!(it[3] as usize, i, "the segment's first item");
                    assert_eq!(w.seg_chunks[seg] as usize, n);
                    // A segment's items lie in one cluster, consecutive, covering [0, written).
                    assert_eq!(i / size as usize, (i + n - 1) / size as usize);
                    let written = written_slots([100, 7, 0, 300][seg % 4], rows[seg / 4]);
                    assert_eq!(it[1], 0);
                    for p in w.items[i..i + n].windows(2) {
                        assert_eq!(p[0][2], p[1][1]);
                        assert_eq!((p[1][0], p[1][3], p[1][7]), (it[0], it[3], it[7]));
                    }
                    assert_eq!(w.items[i + n - 1][2], written);
                    for x in &w.items[i..i + n] {
                        assert!(x[2] - x[1] <= w.chunk);
                        // Items shorter than `chunk` unless the segment needs more than `size`.
                        if written.div_ceil(chunk) <= size {
                            assert!(x[2] - x[1] <= chunk.div_ceil(16) * 16, "{size}/{chunk}");
                        }
                    }
                    covered[seg] += 1;
                    i += n;
                }
                assert!(covered.iter().all(|&c| c == 1), "every segment once");
            }
        }
        // Segments of 2, 1 and 1 chunks in clusters of 4: one cluster, no spare block.
        let w = DecodeWork::build_packed(&layout(&[128, 64, 64]), &[500], 4, 64, 64);
        assert_eq!(w.n_items(), 4);
        assert_eq!(w.seg_chunks, vec![2, 1, 1]);
    }

    #[test]
    fn waves_packed_policy_keeps_the_waves_items() {
        let rows16 = vec![100_000; 16];
        let packed = ChunkPolicy::WavesPacked { overhead_tiles: 10 };
        let slots = DecodeSlots::estimate(264);
        let split = |spans: &[u32]| choose_split_in(packed, &layout(spans), &rows16, 64, slots, 4);
        // Llama-3-8B layer 25 at 4k, 16 rows: waves:10 cuts 1408-slot chunks, 1 to 3 per
        // segment (224 items); packed into 56 clusters of 4, the same chunk and items.
        let l25 = [640, 4096, 640, 4096, 4096, 640, 640, 640];
        assert_eq!(split(&l25), DecodeSplit::packed(4, 1408));
        let w = DecodeWork::build_split(&layout(&l25), &rows16, split(&l25), 64);
        assert_eq!(w.n_items(), 224);
        assert!(w.chunk <= 1408);
        // Segments of 1 or 2 chunks: clusters of 2.
        assert_eq!(split(&[4096; 8]), DecodeSplit::packed(2, 2048));
        // More than 8 chunks per segment (4 rows of 17408-slot segments): the waves list.
        let rows4 = vec![100_000; 4];
        let s = choose_split_in(packed, &layout(&[17408; 8]), &rows4, 64, slots, 4);
        assert_eq!((s.cluster, s.packed), (1, false));
        // Llama-3-8B layer 16 at 4k, 4 rows: waves:10 cuts 448-slot chunks (264 items, up
        // to 10 per segment); chunks of 512 give 8 per segment, 208 items in clusters of 8
        // (at most 91 % of 240), one tile longer.
        let l16 = [4096, 1024, 4096, 1024, 4096, 4096, 4096, 4096];
        let s = choose_split_in(packed, &layout(&l16), &rows4, 64, slots, 4);
        assert_eq!(s, DecodeSplit::packed(8, 512));
        assert_eq!(
            DecodeWork::build_split(&layout(&l16), &rows4, s, 64).n_items(),
            208
        );
        // 64 rows: waves:10 keeps segments whole, nothing to merge or pack; as the pairs rule.
        let rows64 = vec![100_000; 64];
        let s = choose_split_in(packed, &layout(&[4096; 8]), &rows64, 64, slots, 4);
        assert_eq!(
            s,
            choose_split_in(
                ChunkPolicy::WavesPairs { overhead_tiles: 10 },
                &layout(&[4096; 8]),
                &rows64,
                64,
                slots,
                4
            )
        );
        assert_eq!((s.cluster, s.packed), (1, false));
        // A forced size picks the shortest chunk whose clusters fit one wave: 32 segments
        // of 8 (or 7) items are 32 clusters, more than the 30 resident, so 4 items each,
        // two segments per cluster.
        let s = choose_split_in(
            ChunkPolicy::Packed { size: 8 },
            &layout(&[17408; 8]),
            &rows4,
            64,
            slots,
            4,
        );
        assert_eq!(s, DecodeSplit::packed(8, 4352));
        assert_eq!(DecodeSlots::estimate(264).cluster_blocks, [264, 248, 240]);
    }

    #[test]
    fn waves_packed_policy_takes_clusters_of_16_only_where_the_kernel_merges_in_them() {
        let packed = ChunkPolicy::WavesPacked { overhead_tiles: 10 };
        let rows4 = vec![100_000; 4];
        // Llama-3-8B layer 27 at 16k, 4 rows: waves:10 cuts 768-slot chunks (22 per
        // 16384-slot segment, 248 items): no cluster of 8 holds a segment, so the portable
        // kernel runs the plain list.
        let l27 = [2176, 16384, 2176, 2176, 2176, 16384, 2176, 2176];
        let portable = DecodeSlots::estimate(264);
        assert_eq!(portable.wide_blocks, 0);
        let s = choose_split_in(packed, &layout(&l27), &rows4, 64, portable, 4);
        assert_eq!((s.cluster, s.packed, s.chunk), (1, false, 768));
        // The `h` kernel (clusters of 16, 224 resident blocks estimated, 192 of them
        // allowed by the 91 % fit): 1088-slot chunks (5 tiles longer) give the long
        // segments 16 items each, one cluster apiece, and the short ones 2, packed 8 to a
        // cluster: 11 clusters, 176 blocks, every merge in distributed shared memory.
        let wide = DecodeSlots::estimate_for(264, MAX_CLUSTER_WIDE);
        assert_eq!(wide.wide_blocks, 224);
        assert_eq!(wide.packed_fit(16), 192);
        let s = choose_split_in(packed, &layout(&l27), &rows4, 64, wide, 4);
        assert_eq!(s, DecodeSplit::packed(16, 1088));
        let w = DecodeWork::build_split(&layout(&l27), &rows4, s, 64);
        assert_eq!((w.n_items(), w.chunk), (176, 1088));
        assert!(w.seg_chunks.iter().all(|&n| (1..=16).contains(&n)));
        // Segments that need more blocks than fit stay plain (layer 4: 28 long segments).
        let l4 = [10752, 10752, 10752, 10752, 10752, 10752, 10752, 4352];
        let s = choose_split_in(packed, &layout(&l4), &rows4, 64, wide, 4);
        assert_eq!((s.cluster, s.packed), (1, false));
        // Kernels without clusters of 16 never get one, whatever the policy asks.
        assert_eq!(portable.for_cluster(16), 0);
        assert_eq!(portable.packed_fit(16), 0);
    }

    #[test]
    fn chunk_policies_parse_what_they_print() {
        for p in [
            ChunkPolicy::Waves { overhead_tiles: 2 },
            ChunkPolicy::Balanced {
                overhead_tiles: 3,
                tail_pct: 50,
            },
            ChunkPolicy::Fixed(512),
            ChunkPolicy::Cluster { size: 8 },
            ChunkPolicy::ClusterAuto { overhead_tiles: 10 },
            ChunkPolicy::WavesPairs { overhead_tiles: 10 },
            ChunkPolicy::WavesPacked { overhead_tiles: 10 },
            ChunkPolicy::Packed { size: 4 },
            ChunkPolicy::Stream {
                sat_pct: 38,
                wave_tiles: 4,
                merge_tiles: 3,
            },
        ] {
            assert_eq!(p.to_string().parse::<ChunkPolicy>(), Ok(p));
        }
        let e = "waves".parse::<ChunkPolicy>().unwrap_err();
        assert!(e.contains("waves:OVERHEAD"), "{e}");
        assert!("balanced:2:x".parse::<ChunkPolicy>().is_err());
        assert!("stream:0:4:3".parse::<ChunkPolicy>().is_err());
        assert!("stream:101:4:3".parse::<ChunkPolicy>().is_err());
        assert!("stream:38:4".parse::<ChunkPolicy>().is_err());
        for bad in ["cluster:1", "cluster:17", "cluster:auto", "cluster:x"] {
            let e = bad.parse::<ChunkPolicy>().unwrap_err();
            assert!(e.contains("cluster:SIZE (SIZE 2 to 16;"), "{e}");
        }
        // Above 8 only for the `h` kernels; the executor checks the kernel's tiles.cluster.
        assert_eq!(
            "packed:16".parse::<ChunkPolicy>(),
            Ok(ChunkPolicy::Packed { size: 16 })
        );
    }
}
