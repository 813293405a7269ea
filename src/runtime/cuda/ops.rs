//! The CUDA engine's small ops (`ops.cu`): embedding gather, RMSNorm, RoPE fused with the
//! sink + ring cache write, SwiGLU, greedy and temperature/top-p sampling, random weight
//! initialisation and the copy kernel of the roofline. Each has its CPU reference here;
//! [`check`] runs every kernel on random inputs and the cache-layout edge cases on a GPU and
//! compares. Device memory is handled as raw allocations ([`DevMem`]) so one launcher
//! serves every storage type.

#![warn(missing_docs)]

use std::sync::Arc;

use cudarc::driver::{CudaFunction, CudaSlice, CudaStream, DevicePtr, LaunchConfig, PushKernelArg};
use cudarc::nvrtc::Ptx;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{driver, load_images, CudaError};
use crate::codegen::Artifact;
use crate::lower::{CacheLayout, StorageType};

/// Whether the CUDA driver library can be loaded: checked before cudarc's first driver
/// call, whose failure is a panic (caught, but its message and backtrace would reach the
/// user's terminal through the default panic hook).
///
/// # Errors
/// [`CudaError::DriverMissing`] naming the library searched for.
pub fn driver_present() -> Result<(), CudaError> {
    #[cfg(feature = "cuda-loading")]
    {
        // SAFETY: loads (and unloads) the library; no symbol is called.
        if !unsafe { cudarc::driver::sys::is_culib_present() } {
            return Err(CudaError::DriverMissing {
                detail: "no libcuda.so (or libcuda.so.1) on the library search path, \
                         LD_LIBRARY_PATH included"
                    .into(),
            });
        }
    }
    Ok(())
}

/// Most rows [`OpKernels::norm_gemv`] takes (`NORM_GEMV_ROWS` in `ops.cu`).
pub const NORM_GEMV_ROWS: usize = 32;

/// Opens GPU `ordinal`; a missing driver is [`CudaError::DriverMissing`], not a panic.
pub fn open_context(ordinal: usize) -> Result<Arc<cudarc::driver::CudaContext>, CudaError> {
    driver_present()?;
    let ctx = std::panic::catch_unwind(|| cudarc::driver::CudaContext::new(ordinal))
        .map_err(|p| CudaError::DriverMissing {
            detail: super::panic_text(p),
        })?
        .map_err(driver(format!("opening GPU {ordinal}")))?;
    // One stream, launches in order: no per-buffer events (they would break graph capture).
    unsafe { ctx.disable_event_tracking() };
    Ok(ctx)
}

/// The ops' CUDA source for one storage type (`MOA_ELEM` 0 = f32, 1 = f16, 2 = bf16).
pub fn source(storage: StorageType) -> String {
    let elem = match storage {
        StorageType::F32 => 0,
        StorageType::F16 => 1,
        StorageType::Bf16 => 2,
    };
    format!("#define MOA_ELEM {elem}\n{}", include_str!("ops.cu"))
}

/// The ops source as an artifact (so [`load_images`] finds a precompiled cubin for it).
pub fn artifact(storage: StorageType) -> Artifact {
    Artifact {
        path: format!("engine_ops_{}.cu", storage_name(storage)),
        source: source(storage),
        workgroup_bytes: None,
        kernels: Vec::new(),
    }
}

/// The storage type's short name (`f32`, `f16`, `bf16`), as in the ops artifact's file
/// name `engine_ops_<name>.cu`.
pub fn storage_name(s: StorageType) -> &'static str {
    match s {
        StorageType::F32 => "f32",
        StorageType::F16 => "f16",
        StorageType::Bf16 => "bf16",
    }
}

/// Threads per block of the row-wise ops (`THREADS` in ops.cu).
pub const THREADS: u32 = 256;

/// One device allocation of `bytes` bytes and its address (event tracking is off on the
/// engine's context, so the address stays valid for the allocation's life).
pub struct DevMem {
    _buf: CudaSlice<u8>,
    /// The device address of the first byte.
    pub ptr: u64,
    /// The size asked for, in bytes (the allocation is at least 16).
    pub bytes: usize,
}

impl DevMem {
    /// Uninitialised memory (at least 16 bytes, so an empty tensor still has an address).
    pub fn alloc(stream: &Arc<CudaStream>, bytes: usize, what: &str) -> Result<DevMem, CudaError> {
        let n = bytes.max(16);
        // SAFETY: every user writes before it reads (or asks for `zeros`).
        let buf = unsafe { stream.alloc::<u8>(n) }
            .map_err(driver(format!("allocating {n} bytes for {what}")))?;
        let ptr = buf.device_ptr(stream).0;
        Ok(DevMem {
            _buf: buf,
            ptr,
            bytes,
        })
    }

    /// Zeroed memory (at least 16 bytes). Errors: [`CudaError::Driver`] naming `what` when
    /// the allocation fails.
    pub fn zeros(stream: &Arc<CudaStream>, bytes: usize, what: &str) -> Result<DevMem, CudaError> {
        let n = bytes.max(16);
        let buf = stream
            .alloc_zeros::<u8>(n)
            .map_err(driver(format!("allocating {n} bytes for {what}")))?;
        let ptr = buf.device_ptr(stream).0;
        Ok(DevMem {
            _buf: buf,
            ptr,
            bytes,
        })
    }

    /// Copies `data` into the start of this allocation (stream-ordered).
    pub fn write<T: bytemuck::Pod>(
        &mut self,
        stream: &Arc<CudaStream>,
        data: &[T],
    ) -> Result<(), CudaError> {
        let bytes: &[u8] = bytemuck::cast_slice(data);
        if bytes.len() > self.bytes.max(16) {
            return Err(CudaError::InvalidInput(format!(
                "writing {} bytes into an allocation of {}",
                bytes.len(),
                self.bytes
            )));
        }
        let mut view = self._buf.slice_mut(0..bytes.len());
        stream
            .memcpy_htod(bytes, &mut view)
            .map_err(driver("copying to the device"))
    }

    /// Reads the first `n` values of type `T` back (synchronises the stream).
    pub fn read<T: bytemuck::Pod>(
        &self,
        stream: &Arc<CudaStream>,
        n: usize,
    ) -> Result<Vec<T>, CudaError> {
        let bytes = n * std::mem::size_of::<T>();
        let mut host = vec![0u8; bytes];
        stream
            .memcpy_dtoh(&self._buf.slice(0..bytes), host.as_mut_slice())
            .map_err(driver("copying from the device"))?;
        stream
            .synchronize()
            .map_err(driver("waiting for a copy from the device"))?;
        Ok(host
            .chunks_exact(std::mem::size_of::<T>())
            .map(bytemuck::pod_read_unaligned)
            .collect())
    }

    /// Uploads f32 values converted to `storage`.
    pub fn upload(
        stream: &Arc<CudaStream>,
        data: &[f32],
        storage: StorageType,
        what: &str,
    ) -> Result<DevMem, CudaError> {
        let mut m = DevMem::alloc(stream, data.len() * storage.bytes(), what)?;
        match storage {
            StorageType::F32 => m.write(stream, data)?,
            StorageType::F16 => m.write(stream, &to_bits(data, storage))?,
            StorageType::Bf16 => m.write(stream, &to_bits(data, storage))?,
        }
        Ok(m)
    }

    /// Reads `n` values stored as `storage`, as f32.
    pub fn download(
        &self,
        stream: &Arc<CudaStream>,
        n: usize,
        storage: StorageType,
    ) -> Result<Vec<f32>, CudaError> {
        Ok(match storage {
            StorageType::F32 => self.read::<f32>(stream, n)?,
            StorageType::F16 => self
                .read::<u16>(stream, n)?
                .into_iter()
                .map(|b| half::f16::from_bits(b).to_f32())
                .collect(),
            StorageType::Bf16 => self
                .read::<u16>(stream, n)?
                .into_iter()
                .map(|b| half::bf16::from_bits(b).to_f32())
                .collect(),
        })
    }
}

/// f32 values as the bits of a 16-bit storage type (round to nearest even).
pub fn to_bits(data: &[f32], storage: StorageType) -> Vec<u16> {
    match storage {
        StorageType::Bf16 => data
            .iter()
            .map(|&x| half::bf16::from_f32(x).to_bits())
            .collect(),
        _ => data
            .iter()
            .map(|&x| half::f16::from_f32(x).to_bits())
            .collect(),
    }
}

/// `x` rounded to `storage` and back (what the device holds after a store).
pub fn round(x: f32, storage: StorageType) -> f32 {
    match storage {
        StorageType::F32 => x,
        StorageType::F16 => half::f16::from_f32(x).to_f32(),
        StorageType::Bf16 => half::bf16::from_f32(x).to_f32(),
    }
}

/// One kernel argument: a device address, a 32-bit value, an f32 or a 64-bit value.
#[derive(Clone, Copy, Debug)]
pub enum KArg {
    /// A device address (a pointer parameter).
    Ptr(u64),
    /// An `unsigned` parameter (sizes in tokens, rows, heads or elements; flags).
    U32(u32),
    /// A `float` parameter (RMSNorm epsilon, temperature, top-p, a fill's scale and offset).
    F32(f32),
    /// An `unsigned long long` parameter (element or 16-byte-word counts, seeds).
    U64(u64),
}

/// Queues one launch of `f` on `stream` (no synchronisation).
///
/// # Safety
/// The arguments must match the kernel's parameters in order and type, and every address
/// must hold as many elements as the kernel reads or writes for this grid.
pub unsafe fn launch(
    stream: &Arc<CudaStream>,
    f: &CudaFunction,
    name: &str,
    grid: [u32; 3],
    block: [u32; 3],
    shared: u32,
    args: &[KArg],
) -> Result<(), CudaError> {
    if grid.contains(&0) {
        return Ok(());
    }
    let mut lb = stream.launch_builder(f);
    for a in args {
        match a {
            KArg::Ptr(p) | KArg::U64(p) => lb.arg(p),
            KArg::U32(v) => lb.arg(v),
            KArg::F32(v) => lb.arg(v),
        };
    }
    let cfg = LaunchConfig {
        grid_dim: (grid[0], grid[1], grid[2]),
        block_dim: (block[0], block[1], block[2]),
        shared_mem_bytes: shared,
    };
    // SAFETY: the caller's contract (above).
    unsafe { lb.launch(cfg) }
        .map(|_| ())
        .map_err(driver(format!("launching `{name}`")))
}

/// The loaded ops of one storage type.
pub struct OpKernels {
    /// The storage type the ops were compiled for (`MOA_ELEM`).
    pub storage: StorageType,
    /// `moa_embed`: rows of the embedding table gathered by token id, to f32.
    pub embed: CudaFunction,
    /// `moa_rmsnorm`: RMSNorm of (selected) f32 rows, one block of 256 threads per row.
    pub rmsnorm: CudaFunction,
    /// `moa_rope_kv`: RoPE of a decode step's fused QKV with the K/V write into the sink +
    /// ring cache (docs/DESIGN.md §5).
    pub rope_kv: CudaFunction,
    /// `moa_rope_qk`: a prefill pass's RoPE of Q and K with K's cache write, in blocks of
    /// 64 tokens.
    pub rope_qk: CudaFunction,
    /// `moa_v_write`: a prefill pass's V and its cache slots (and the `u` prefill's V
    /// pre-pass half), in blocks of 64 tokens.
    pub v_write: CudaFunction,
    /// `moa_swiglu`: `silu(gate) · up` of `[n_tokens, 2 ffn]` f32 into the storage type.
    pub swiglu: CudaFunction,
    /// `moa_norm_gemv`: a decode projection of up to [`NORM_GEMV_ROWS`] rows fused with its
    /// input RMSNorm (QKV, or gate/up with SwiGLU).
    pub norm_gemv: CudaFunction,
    /// `moa_argmax`: greedy sampling, the first largest logit per row.
    pub argmax: CudaFunction,
    /// `moa_sample`: temperature, top-k and top-p sampling per row (as
    /// `shaders/sample.wgsl`).
    pub sample: CudaFunction,
    /// `moa_fill_random`: random weights in the storage type, `offset + scale · u`, u from
    /// [`random_value`].
    pub fill_random: CudaFunction,
    /// `moa_fill_random_f32`: the same in f32.
    pub fill_random_f32: CudaFunction,
    /// `moa_copy`: a 16-byte-per-thread copy, the bandwidth the roofline of `moa bench`
    /// divides by.
    pub copy: CudaFunction,
}

impl OpKernels {
    /// Compiles (NVRTC, or a cubin from `MOA_CUBIN_DIR`) and loads the ops for `storage`.
    pub fn load(
        stream: &Arc<CudaStream>,
        storage: StorageType,
        arch: &'static str,
    ) -> Result<OpKernels, CudaError> {
        let image: Ptx = load_images(&[artifact(storage)], arch)?
            .into_iter()
            .next()
            .ok_or_else(|| CudaError::MissingKernel("engine ops".into()))?;
        let module = stream
            .context()
            .load_module(image)
            .map_err(driver("loading the engine ops"))?;
        let f = |name: &str| {
            module
                .load_function(name)
                .map_err(driver(format!("looking up `{name}`")))
        };
        Ok(OpKernels {
            storage,
            embed: f("moa_embed")?,
            rmsnorm: f("moa_rmsnorm")?,
            rope_kv: f("moa_rope_kv")?,
            rope_qk: f("moa_rope_qk")?,
            v_write: f("moa_v_write")?,
            swiglu: f("moa_swiglu")?,
            norm_gemv: f("moa_norm_gemv")?,
            argmax: f("moa_argmax")?,
            sample: f("moa_sample")?,
            fill_random: f("moa_fill_random")?,
            fill_random_f32: f("moa_fill_random_f32")?,
            copy: f("moa_copy")?,
        })
    }

    /// `x[t, :] = table[tokens[t], :]`; shapes as [`embed_ref`].
    ///
    /// # Safety
    /// `tokens` holds `n` ids < the table's rows, `table` `[vocab, hidden]` (storage type),
    /// `x` `[n, hidden]` f32.
    pub unsafe fn embed(
        &self,
        s: &Arc<CudaStream>,
        tokens: u64,
        table: u64,
        x: u64,
        n: u32,
        hidden: u32,
    ) -> Result<(), CudaError> {
        let args = [
            KArg::Ptr(tokens),
            KArg::Ptr(table),
            KArg::Ptr(x),
            KArg::U32(n),
            KArg::U32(hidden),
        ];
        let grid = [hidden.div_ceil(THREADS), n, 1];
        unsafe { launch(s, &self.embed, "moa_embed", grid, [THREADS, 1, 1], 0, &args) }
    }

    /// RMSNorm of rows `rows[r]` (or `r` when `rows` is 0) of `x` into `out`; see
    /// [`rmsnorm_ref`].
    ///
    /// # Safety
    /// `x` f32 holds every selected row, `weight` f32 `[hidden]`, `out` `[n_rows, hidden]`.
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn rmsnorm(
        &self,
        s: &Arc<CudaStream>,
        x: u64,
        rows: u64,
        weight: u64,
        out: u64,
        n_rows: u32,
        hidden: u32,
        eps: f32,
    ) -> Result<(), CudaError> {
        let args = [
            KArg::Ptr(x),
            KArg::Ptr(rows),
            KArg::Ptr(weight),
            KArg::Ptr(out),
            KArg::U32(n_rows),
            KArg::U32(hidden),
            KArg::F32(eps),
        ];
        let grid = [n_rows, 1, 1];
        unsafe {
            launch(
                s,
                &self.rmsnorm,
                "moa_rmsnorm",
                grid,
                [THREADS, 1, 1],
                0,
                &args,
            )
        }
    }

    /// Whether [`Self::norm_gemv`] takes `n_rows` rows of `hidden`: at most
    /// [`NORM_GEMV_ROWS`] rows whose normalized copies fit 48 KiB of shared memory.
    pub fn norm_gemv_fits(n_rows: usize, hidden: usize) -> bool {
        (1..=NORM_GEMV_ROWS).contains(&n_rows) && n_rows * hidden * 4 <= 48 << 10
    }

    /// RMSNorm of `n_rows` rows fused with the projection that reads them; see
    /// [`norm_gemv_ref`]. `swiglu`: `w` is a gate/up matrix `[2 n_out, hidden]` and `out`
    /// gets `silu(gate) * up` in the storage type, else `out` gets f32 `[n_rows, n_out]`.
    ///
    /// # Safety
    /// `x` `[n_rows, hidden]` f32, `norm_w` `[hidden]` f32, `w` as above (storage type),
    /// `out` `[n_rows, n_out]`; [`Self::norm_gemv_fits`]`(n_rows, hidden)`.
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn norm_gemv(
        &self,
        s: &Arc<CudaStream>,
        x: u64,
        norm_w: u64,
        w: u64,
        out: u64,
        n_rows: u32,
        hidden: u32,
        n_out: u32,
        eps: f32,
        swiglu: bool,
    ) -> Result<(), CudaError> {
        if !Self::norm_gemv_fits(n_rows as usize, hidden as usize) {
            return Err(CudaError::InvalidInput(format!(
                "moa_norm_gemv: {n_rows} rows of {hidden}: allowed 1..={NORM_GEMV_ROWS} rows \
                 within 48 KiB of shared memory"
            )));
        }
        let args = [
            KArg::Ptr(x),
            KArg::Ptr(norm_w),
            KArg::Ptr(w),
            KArg::Ptr(out),
            KArg::U32(n_rows),
            KArg::U32(hidden),
            KArg::U32(n_out),
            KArg::F32(eps),
            KArg::U32(u32::from(swiglu)),
        ];
        let grid = [n_out.div_ceil(THREADS / 32), 1, 1];
        unsafe {
            launch(
                s,
                &self.norm_gemv,
                "moa_norm_gemv",
                grid,
                [THREADS, 1, 1],
                n_rows * hidden * 4,
                &args,
            )
        }
    }

    /// RoPE + KV write; see [`rope_kv_ref`] for the shapes. `k_cache` 0: no cache write.
    /// One token per block (decode steps); a prefill pass writes the same values and
    /// slots with [`OpKernels::rope_qk`] and [`OpKernels::v_write`].
    ///
    /// # Safety
    /// Every buffer has the shape `rope_kv_ref` gives it; positions index `rope`.
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn rope_kv(
        &self,
        s: &Arc<CudaStream>,
        qkv: u64,
        tok: u64,
        rope: u64,
        seg: u64,
        qkv_out: [u64; 3],
        cache: [u64; 2],
        n: u32,
        heads: [u32; 3],
        row_slots: u32,
    ) -> Result<(), CudaError> {
        let [q_heads, kv_heads, d] = heads;
        let args = [
            KArg::Ptr(qkv),
            KArg::Ptr(tok),
            KArg::Ptr(rope),
            KArg::Ptr(seg),
            KArg::Ptr(qkv_out[0]),
            KArg::Ptr(qkv_out[1]),
            KArg::Ptr(qkv_out[2]),
            KArg::Ptr(cache[0]),
            KArg::Ptr(cache[1]),
            KArg::U32(n),
            KArg::U32(q_heads),
            KArg::U32(kv_heads),
            KArg::U32(d),
            KArg::U32(row_slots),
        ];
        let grid = [(d / 2).div_ceil(64), q_heads + 2 * kv_heads, n];
        unsafe { launch(s, &self.rope_kv, "moa_rope_kv", grid, [64, 1, 1], 0, &args) }
    }

    /// Q's and K's part of [`OpKernels::rope_kv`] (RoPE, packed q and k, K's cache slots:
    /// the same values and slots) in blocks of 64 tokens of one head, for a prefill pass
    /// (`moa_rope_kv`'s one-token blocks moved 0.8 TB/s there). `head_dim % 16 == 0`.
    ///
    /// # Safety
    /// As [`OpKernels::rope_kv`] (`k_cache` 0: no cache write).
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn rope_qk(
        &self,
        s: &Arc<CudaStream>,
        qkv: u64,
        tok: u64,
        rope: u64,
        seg: u64,
        qk_out: [u64; 2],
        k_cache: u64,
        n: u32,
        heads: [u32; 3],
        row_slots: u32,
    ) -> Result<(), CudaError> {
        let [q_heads, kv_heads, d] = heads;
        if !d.is_multiple_of(16) {
            return Err(CudaError::InvalidInput(format!(
                "moa_rope_qk: head_dim {d} is not a multiple of 16"
            )));
        }
        let args = [
            KArg::Ptr(qkv),
            KArg::Ptr(tok),
            KArg::Ptr(rope),
            KArg::Ptr(seg),
            KArg::Ptr(qk_out[0]),
            KArg::Ptr(qk_out[1]),
            KArg::Ptr(k_cache),
            KArg::U32(n),
            KArg::U32(q_heads),
            KArg::U32(kv_heads),
            KArg::U32(d),
            KArg::U32(row_slots),
        ];
        let grid = [n.div_ceil(64), q_heads + kv_heads, 1];
        unsafe { launch(s, &self.rope_qk, "moa_rope_qk", grid, [128, 1, 1], 0, &args) }
    }

    /// V's part of [`OpKernels::rope_kv`] (packed `v` and its cache slots, the same values
    /// and slots) in blocks of 64 tokens, and with `v_f16` (not 0) the first half of the
    /// `u` prefill's V pre-pass (`codegen::abi::Arg::VF16`): the f16 copy of V at scale 1
    /// and `v_max[h]` raised to the largest |v| of KV head h as bf16 bits (exact in bf16
    /// storage; the host zeroes `v_max` before the pass's first group). What it writes is
    /// [`v_write_ref`]'s. `head_dim % 8 == 0`.
    ///
    /// # Safety
    /// `qkv`, `tok`, `seg`, `v` and the cache as for [`OpKernels::rope_kv`] (`v_cache` 0:
    /// no cache write); `v_f16` 0 or `[n, kv_heads, head_dim]` 16-bit values, `v_max`
    /// `kv_heads` words where `v_f16` is given.
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn v_write(
        &self,
        s: &Arc<CudaStream>,
        qkv: u64,
        tok: u64,
        seg: u64,
        v: u64,
        v_cache: u64,
        v_f16: [u64; 2],
        n: u32,
        heads: [u32; 3],
        row_slots: u32,
    ) -> Result<(), CudaError> {
        let [q_heads, kv_heads, d] = heads;
        if !d.is_multiple_of(8) {
            return Err(CudaError::InvalidInput(format!(
                "moa_v_write: head_dim {d} is not a multiple of 8"
            )));
        }
        let args = [
            KArg::Ptr(qkv),
            KArg::Ptr(tok),
            KArg::Ptr(seg),
            KArg::Ptr(v),
            KArg::Ptr(v_cache),
            KArg::Ptr(v_f16[0]),
            KArg::Ptr(v_f16[1]),
            KArg::U32(n),
            KArg::U32(q_heads),
            KArg::U32(kv_heads),
            KArg::U32(d),
            KArg::U32(row_slots),
        ];
        let grid = [n.div_ceil(64), kv_heads, 1];
        unsafe { launch(s, &self.v_write, "moa_v_write", grid, [128, 1, 1], 0, &args) }
    }

    /// `out = silu(gate) * up` of a fused `[n, 2 ffn]` f32 buffer.
    ///
    /// # Safety
    /// `gu` `[n, 2 ffn]` f32, `out` `[n, ffn]` storage type.
    pub unsafe fn swiglu(
        &self,
        s: &Arc<CudaStream>,
        gu: u64,
        out: u64,
        n: u32,
        ffn: u32,
    ) -> Result<(), CudaError> {
        let args = [KArg::Ptr(gu), KArg::Ptr(out), KArg::U32(n), KArg::U32(ffn)];
        let grid = [ffn.div_ceil(THREADS), n, 1];
        unsafe {
            launch(
                s,
                &self.swiglu,
                "moa_swiglu",
                grid,
                [THREADS, 1, 1],
                0,
                &args,
            )
        }
    }

    /// Greedy (argmax, `temperature` 0) or temperature/top-k/top-p choice of each row's
    /// token from f32 logits (`top_k` 0: every token; see [`sample_ref`]).
    ///
    /// # Safety
    /// `logits` `[rows, vocab]` f32, `uniforms` `[rows]` f32 (sampling), `tokens` `[rows]`.
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn choose(
        &self,
        s: &Arc<CudaStream>,
        logits: u64,
        uniforms: u64,
        tokens: u64,
        rows: u32,
        vocab: u32,
        temperature: f32,
        top_p: f32,
        top_k: u32,
    ) -> Result<(), CudaError> {
        let grid = [rows, 1, 1];
        if temperature <= 0.0 {
            let args = [
                KArg::Ptr(logits),
                KArg::Ptr(tokens),
                KArg::U32(rows),
                KArg::U32(vocab),
            ];
            unsafe {
                launch(
                    s,
                    &self.argmax,
                    "moa_argmax",
                    grid,
                    [THREADS, 1, 1],
                    0,
                    &args,
                )
            }
        } else {
            let args = [
                KArg::Ptr(logits),
                KArg::Ptr(uniforms),
                KArg::Ptr(tokens),
                KArg::U32(rows),
                KArg::U32(vocab),
                KArg::F32(temperature),
                KArg::F32(top_p),
                KArg::U32(top_k),
            ];
            unsafe {
                launch(
                    s,
                    &self.sample,
                    "moa_sample",
                    grid,
                    [THREADS, 1, 1],
                    0,
                    &args,
                )
            }
        }
    }

    /// Fills `n` values at `w` with `offset + scale * u`, u uniform in [-1, 1) from
    /// ([`random_value`]`(seed, i)`); `f32` picks the f32 kernel, else the storage type.
    ///
    /// # Safety
    /// `w` holds `n` values of the chosen type.
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn fill_random(
        &self,
        s: &Arc<CudaStream>,
        w: u64,
        n: u64,
        seed: u64,
        scale: f32,
        offset: f32,
        f32: bool,
    ) -> Result<(), CudaError> {
        let args = [
            KArg::Ptr(w),
            KArg::U64(n),
            KArg::U64(seed),
            KArg::F32(scale),
            KArg::F32(offset),
        ];
        let blocks = n.div_ceil(u64::from(THREADS)).clamp(1, 132 * 16) as u32;
        let (f, name) = if f32 {
            (&self.fill_random_f32, "moa_fill_random_f32")
        } else {
            (&self.fill_random, "moa_fill_random")
        };
        unsafe { launch(s, f, name, [blocks, 1, 1], [THREADS, 1, 1], 0, &args) }
    }

    /// Copies `bytes` (a multiple of 16) from `src` to `dst`.
    ///
    /// # Safety
    /// Both hold `bytes` bytes, 16-byte aligned.
    pub unsafe fn copy(
        &self,
        s: &Arc<CudaStream>,
        src: u64,
        dst: u64,
        bytes: u64,
    ) -> Result<(), CudaError> {
        let args = [KArg::Ptr(src), KArg::Ptr(dst), KArg::U64(bytes / 16)];
        let blocks = 132 * 8;
        unsafe {
            launch(
                s,
                &self.copy,
                "moa_copy",
                [blocks, 1, 1],
                [THREADS, 1, 1],
                0,
                &args,
            )
        }
    }
}

// ---------------------------------------------------------------------------------------
// CPU references (the oracle of `check`; the engine's parity tests compare whole models).

/// `[n, hidden]` rows of `table` (`[vocab, hidden]`).
pub fn embed_ref(tokens: &[u32], table: &[f32], hidden: usize) -> Vec<f32> {
    tokens
        .iter()
        .flat_map(|&t| table[t as usize * hidden..][..hidden].iter().copied())
        .collect()
}

/// RMSNorm of the selected rows of `x` (`[*, hidden]`): `x / sqrt(mean(x²) + eps) * w`.
pub fn rmsnorm_ref(x: &[f32], rows: &[u32], weight: &[f32], eps: f32) -> Vec<f32> {
    let hidden = weight.len();
    let mut out = Vec::with_capacity(rows.len() * hidden);
    for &r in rows {
        let v = &x[r as usize * hidden..][..hidden];
        let ms = v.iter().map(|&a| f64::from(a) * f64::from(a)).sum::<f64>() / hidden as f64;
        let inv = 1.0 / (ms + f64::from(eps)).sqrt();
        out.extend(
            v.iter()
                .zip(weight)
                .map(|(&a, &w)| (f64::from(a) * inv * f64::from(w)) as f32),
        );
    }
    out
}

/// The (cos, sin) table of positions `0..n_tokens`, `[n_tokens, head_dim / 2]` pairs,
/// computed in f64 from `inv_freq` (`[head_dim / 2]`, [`LlamaConfig::rope_inv_freq`], as
/// the CPU reference model).
///
/// [`LlamaConfig::rope_inv_freq`]: crate::model::LlamaConfig::rope_inv_freq
pub fn rope_table(n_tokens: u32, inv_freq: &[f64]) -> Vec<[f32; 2]> {
    let mut t = Vec::with_capacity(n_tokens as usize * inv_freq.len());
    for p in 0..n_tokens as usize {
        for &inv in inv_freq {
            let a = p as f64 * inv;
            t.push([a.cos() as f32, a.sin() as f32]);
        }
    }
    t
}

/// What [`rope_kv_ref`] produces: packed q, k, v and the caches after the writes.
pub struct RopeKvOut {
    /// Q after RoPE, `[n, q_heads, head_dim]`.
    pub q: Vec<f32>,
    /// K after RoPE, `[n, kv_heads, head_dim]`.
    pub k: Vec<f32>,
    /// V as projected (no RoPE), `[n, kv_heads, head_dim]`.
    pub v: Vec<f32>,
    /// The K cache after the writes, `[rows, row_slots, head_dim]`, values rounded to the
    /// storage type.
    pub k_cache: Vec<f32>,
    /// The V cache after the writes, same layout.
    pub v_cache: Vec<f32>,
}

/// RoPE of q and k (half-split pairs) and the cache write of every token's k and v at
/// `CacheLayout::slot_of` (skipping ring slots a later token of the same row overwrites in
/// this pass, so the survivor is the newest token, as sequential writes would leave it).
///
/// * `qkv`: `[n, (hq + 2 hkv) d]`; `tok[t]` = (position, row, row's last position, 0)
/// * caches: `[rows, layout.row_slots, d]`, updated in place (values rounded to `storage`).
#[allow(clippy::too_many_arguments)]
pub fn rope_kv_ref(
    qkv: &[f32],
    tok: &[[u32; 4]],
    rope: &[[f32; 2]],
    layout: &CacheLayout,
    heads: [usize; 3],
    storage: StorageType,
    k_cache: &mut [f32],
    v_cache: &mut [f32],
) -> RopeKvOut {
    let [hq, hkv, d] = heads;
    let half = d / 2;
    let width = (hq + 2 * hkv) * d;
    let mut q = vec![0f32; tok.len() * hq * d];
    let mut k = vec![0f32; tok.len() * hkv * d];
    let mut v = vec![0f32; tok.len() * hkv * d];
    for (t, info) in tok.iter().enumerate() {
        let pos = info[0] as usize;
        let rotate = |head: usize| -> Vec<f32> {
            let src = &qkv[t * width + head * d..][..d];
            let mut o = src.to_vec();
            for i in 0..half {
                let [c, s] = rope[pos * half + i];
                o[i] = src[i] * c - src[i + half] * s;
                o[i + half] = src[i + half] * c + src[i] * s;
            }
            o
        };
        for h in 0..hq {
            let o = rotate(h);
            for i in 0..d {
                q[(t * hq + h) * d + i] = round(o[i], storage);
            }
        }
        for h in 0..hkv {
            let kr = rotate(hq + h);
            let vr = &qkv[t * width + (hq + hkv + h) * d..][..d];
            for i in 0..d {
                k[(t * hkv + h) * d + i] = round(kr[i], storage);
                v[(t * hkv + h) * d + i] = round(vr[i], storage);
            }
            let seg = layout.segments[h];
            let p = u64::from(info[0]);
            let overwritten = p >= u64::from(seg.sink)
                && seg.ring > 0
                && p + u64::from(seg.ring) <= u64::from(info[2]);
            if let (Some(slot), false) = (layout.slot_of(h, p), overwritten) {
                let c = (info[1] as usize * layout.row_slots as usize + slot as usize) * d;
                for i in 0..d {
                    k_cache[c + i] = round(kr[i], storage);
                    v_cache[c + i] = round(vr[i], storage);
                }
            }
        }
    }
    RopeKvOut {
        q,
        k,
        v,
        k_cache: k_cache.to_vec(),
        v_cache: v_cache.to_vec(),
    }
}

/// What [`OpKernels::v_write`] adds to [`rope_kv_ref`]'s V with its f16 copy: the copy's
/// bits, `f16(v)` of every rounded value (`[n, kv_heads, head_dim]`, round to nearest
/// even), and per KV head the largest |v| as the bits of a bf16 (`v` as `rope_kv_ref`
/// rounds it to `storage`; exact bits where `storage` is bf16).
pub fn v_write_ref(v: &[f32], kv_heads: usize, head_dim: usize) -> (Vec<u16>, Vec<u32>) {
    let mut max = vec![0u32; kv_heads];
    let copy = v
        .iter()
        .enumerate()
        .map(|(i, &x)| {
            let h = i / head_dim % kv_heads;
            max[h] = max[h].max((x.to_bits() >> 16) & 0x7fff);
            half::f16::from_f32(x).to_bits()
        })
        .collect();
    (copy, max)
}

/// `silu(gate) * up` of `[n, 2 ffn]` (gate then up).
pub fn swiglu_ref(gu: &[f32], ffn: usize) -> Vec<f32> {
    gu.chunks(2 * ffn)
        .flat_map(|r| {
            (0..ffn).map(move |j| {
                let g = f64::from(r[j]);
                (g / (1.0 + (-g).exp()) * f64::from(r[ffn + j])) as f32
            })
        })
        .collect()
}

/// [`OpKernels::norm_gemv`]: the RMSNorm of each row of `x` (`[rows, hidden]`) rounded to
/// `storage` (what `moa_rmsnorm` stores), then the projection by `w` (`[n_out, hidden]`,
/// or `[2 n_out, hidden]` gate then up with `swiglu`, which returns `silu(gate) * up`).
pub fn norm_gemv_ref(
    x: &[f32],
    norm_w: &[f32],
    w: &[f32],
    eps: f32,
    storage: StorageType,
    swiglu: bool,
) -> Vec<f32> {
    let hidden = norm_w.len();
    let rows: Vec<u32> = (0..(x.len() / hidden) as u32).collect();
    let h: Vec<f32> = rmsnorm_ref(x, &rows, norm_w, eps)
        .into_iter()
        .map(|v| round(v, storage))
        .collect();
    let n = w.len() / hidden;
    let mut y = vec![0f32; rows.len() * n];
    linear_ref(&h, w, hidden, &mut y, false);
    if swiglu {
        swiglu_ref(&y, n / 2)
    } else {
        y
    }
}

/// `y[t, n] = Σ_k x[t, k] w[n, k]` (+ `y` when `accumulate`): a projection, f64 sums.
pub fn linear_ref(x: &[f32], w: &[f32], k: usize, y: &mut [f32], accumulate: bool) {
    let n_out = w.len() / k;
    for (t, xr) in x.chunks(k).enumerate() {
        for n in 0..n_out {
            let wr = &w[n * k..][..k];
            let s: f64 = xr
                .iter()
                .zip(wr)
                .map(|(&a, &b)| f64::from(a) * f64::from(b))
                .sum();
            let o = &mut y[t * n_out + n];
            *o = if accumulate { *o + s as f32 } else { s as f32 };
        }
    }
}

/// The order of `x` among f32 values as a u32 (larger float, larger key; NaN aside): the
/// sign bit set for positives, every bit flipped for negatives. The top-k threshold of
/// `moa_sample` and shaders/sample.wgsl is a key.
pub fn order_key(x: f32) -> u32 {
    let b = x.to_bits();
    if b & 0x8000_0000 != 0 {
        !b
    } else {
        b | 0x8000_0000
    }
}

/// The key of the `k`-th largest of `logits` (`order_key`), found as the kernels find it:
/// bit by bit from the top, the largest key that at least `k` logits reach. 0 (every
/// logit reaches it) where `k` is 0 or at least the vocabulary.
pub fn top_k_cut(logits: &[f32], k: u32) -> u32 {
    if k == 0 || k as usize >= logits.len() {
        return 0;
    }
    let mut cut = 0u32;
    for bit in (0..32).rev() {
        let cand = cut | (1 << bit);
        let count = logits.iter().filter(|&&l| order_key(l) >= cand).count();
        if count >= k as usize {
            cut = cand;
        }
    }
    cut
}

/// The token temperature/top-k/top-p sampling picks (the algorithm of `moa_sample`, in
/// f64): the `top_k` largest logits (and any tied with the k-th; 0: all) are the
/// candidates, the nucleus threshold over their mass by the same 30-step bisection, then
/// the kept token where the running mass crosses `u` × kept mass.
pub fn sample_ref(logits: &[f32], temperature: f32, top_p: f32, top_k: u32, u: f32) -> u32 {
    if temperature <= 0.0 || top_k == 1 {
        return crate::model::reference::argmax(logits);
    }
    let cut = top_k_cut(logits, top_k);
    let mx = logits.iter().copied().fold(f32::MIN, f32::max);
    // A token outside the top k has p = -1: never at or above a threshold in [0, 1].
    let p: Vec<f64> = logits
        .iter()
        .map(|&l| {
            if order_key(l) >= cut {
                ((f64::from(l) - f64::from(mx)) / f64::from(temperature)).exp()
            } else {
                -1.0
            }
        })
        .collect();
    let want = f64::from(top_p) * p.iter().filter(|&&x| x >= 0.0).sum::<f64>();
    let (mut lo, mut hi) = (0f64, 1f64);
    if top_p < 1.0 {
        for _ in 0..30 {
            let mid = 0.5 * (lo + hi);
            let kept: f64 = p.iter().filter(|&&x| x >= mid).sum();
            if kept >= want {
                lo = mid;
            } else {
                hi = mid;
            }
        }
    }
    let kept: f64 = p.iter().filter(|&&x| x >= lo).sum();
    let goal = f64::from(u) * kept;
    let mut acc = 0.0;
    let mut last = 0;
    for (i, &x) in p.iter().enumerate() {
        if x >= lo {
            acc += x;
            last = i;
            if acc > goal {
                return i as u32;
            }
        }
    }
    last as u32
}

/// SplitMix64 (the generator of `moa_fill_random`).
fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The uniform number in [-1, 1) that `moa_fill_random` draws for element `i` of `seed`.
pub fn random_value(seed: u64, i: u64) -> f32 {
    let h = splitmix(seed ^ splitmix(i));
    (h >> 40) as f32 * (1.0 / 8_388_608.0) - 1.0
}

// ---------------------------------------------------------------------------------------
// The device check.

/// One op's comparison with its CPU reference.
#[derive(Clone, Debug)]
pub struct OpResult {
    /// The op and case, e.g. `rmsnorm (gathered rows)`.
    pub name: String,
    /// Largest `|got - want| / (1 + |want|)` over the output (infinite on NaN or a length
    /// mismatch); for sampling the count of differing tokens, for the copy 0 or 1.
    pub max_error: f32,
    /// The bound it is held to (0 for the exact ops).
    pub tolerance: f32,
    /// `max_error <= tolerance`.
    pub passed: bool,
}

fn compare(name: &str, got: &[f32], want: &[f32], tol: f32) -> OpResult {
    let mut max_error = if got.len() == want.len() {
        0f32
    } else {
        f32::INFINITY
    };
    for (a, b) in got.iter().zip(want) {
        let e = (a - b).abs() / (1.0 + b.abs());
        if e.is_nan() {
            max_error = f32::INFINITY;
        } else if e > max_error {
            max_error = e;
        }
    }
    OpResult {
        name: name.to_string(),
        max_error,
        tolerance: tol,
        passed: max_error <= tol,
    }
}

fn random_vec(rng: &mut StdRng, n: usize, scale: f32) -> Vec<f32> {
    (0..n)
        .map(|_| rng.random_range(-1.0f32..1.0) * scale)
        .collect()
}

/// Runs every op on random inputs (and, for the cache write, a prefill pass whose rows
/// wrap their rings, a span 0 segment and a decode step after the wrap) on GPU `ordinal`
/// and compares each with its CPU reference. Errors are relative to `1 + |expected|`.
pub fn check(ordinal: usize, storage: StorageType, seed: u64) -> Result<Vec<OpResult>, CudaError> {
    use crate::lower::Segment;
    let ctx = open_context(ordinal)?;
    let s = ctx.new_stream().map_err(driver("creating a stream"))?;
    let ops = OpKernels::load(&s, storage, super::DEFAULT_ARCH)?;
    let mut rng = StdRng::seed_from_u64(seed);
    let tol = match storage {
        StorageType::F32 => 1e-5,
        StorageType::F16 => 2e-3,
        StorageType::Bf16 => 1.6e-2,
    };
    let e = storage.bytes();
    let mut out = Vec::new();

    // Embedding: 7 tokens of a 50 x 136 table (hidden not a multiple of the block).
    let (vocab, hidden) = (50usize, 136usize);
    let table: Vec<f32> = random_vec(&mut rng, vocab * hidden, 1.0)
        .into_iter()
        .map(|x| round(x, storage))
        .collect();
    let tokens: Vec<u32> = (0..7).map(|_| rng.random_range(0..vocab as u32)).collect();
    let table_d = DevMem::upload(&s, &table, storage, "table")?;
    let mut tok_d = DevMem::alloc(&s, 4 * tokens.len(), "tokens")?;
    tok_d.write(&s, &tokens)?;
    let x_d = DevMem::alloc(&s, 4 * tokens.len() * hidden, "x")?;
    unsafe { ops.embed(&s, tok_d.ptr, table_d.ptr, x_d.ptr, 7, hidden as u32) }?;
    out.push(compare(
        "embed",
        &x_d.read::<f32>(&s, 7 * hidden)?,
        &embed_ref(&tokens, &table, hidden),
        0.0,
    ));

    // RMSNorm with a row gather (hidden 1000: threads loop with a tail).
    let hidden = 1000usize;
    let x = random_vec(&mut rng, 5 * hidden, 3.0);
    let w = random_vec(&mut rng, hidden, 1.0);
    let rows = [4u32, 0, 2];
    let x_d = DevMem::upload(&s, &x, StorageType::F32, "x")?;
    let w_d = DevMem::upload(&s, &w, StorageType::F32, "w")?;
    let mut rows_d = DevMem::alloc(&s, 12, "rows")?;
    rows_d.write(&s, &rows)?;
    let o_d = DevMem::alloc(&s, 3 * hidden * e, "out")?;
    unsafe {
        ops.rmsnorm(
            &s,
            x_d.ptr,
            rows_d.ptr,
            w_d.ptr,
            o_d.ptr,
            3,
            hidden as u32,
            1e-5,
        )
    }?;
    out.push(compare(
        "rmsnorm (gathered rows)",
        &o_d.download(&s, 3 * hidden, storage)?,
        &rmsnorm_ref(&x, &rows, &w, 1e-5),
        tol,
    ));
    unsafe { ops.rmsnorm(&s, x_d.ptr, 0, w_d.ptr, o_d.ptr, 3, hidden as u32, 1e-5) }?;
    out.push(compare(
        "rmsnorm",
        &o_d.download(&s, 3 * hidden, storage)?,
        &rmsnorm_ref(&x, &[0, 1, 2], &w, 1e-5),
        tol,
    ));

    // RoPE + cache write: 3 KV heads with spans 7 (sink 2, ring 5), 0 and 40, two rows of
    // 13 and 3 prefill tokens (row 0 wraps its ring), then a decode step at position 30.
    let (hq, hkv, d) = (6usize, 3usize, 16usize);
    let mk = |offset, span: u32, sink: u32| Segment {
        offset,
        span,
        sink: sink.min(span),
        ring: span - sink.min(span),
    };
    let layout = CacheLayout {
        n_tokens: 40,
        segments: vec![mk(0, 7, 2), mk(7, 0, 2), mk(7, 40, 2)],
        row_slots: 47,
    };
    // Plain RoPE at theta 10 000 (the kernel reads the table; scaling changes only it).
    let rope = rope_table(40, &crate::model::config::plain_rope_inv_freq(d, 10_000.0));
    let seg_words: Vec<u32> = layout
        .segments
        .iter()
        .flat_map(|g| [g.offset, g.sink, g.ring, 0])
        .collect();
    let mut seg_d = DevMem::alloc(&s, 4 * seg_words.len(), "segments")?;
    seg_d.write(&s, &seg_words)?;
    let rope_d = DevMem::upload(&s, rope.as_flattened(), StorageType::F32, "rope")?;
    let cache_len = 2 * layout.row_slots as usize * d;
    let mut k_cache = vec![0f32; cache_len];
    let mut v_cache = vec![0f32; cache_len];
    let kc_d = DevMem::zeros(&s, cache_len * e, "k cache")?;
    let vc_d = DevMem::zeros(&s, cache_len * e, "v cache")?;
    for (pass, tok) in [
        (0..13)
            .map(|p| [p, 0, 12, 0])
            .chain((0..3).map(|p| [p, 1, 2, 0]))
            .collect::<Vec<[u32; 4]>>(),
        vec![[30, 0, 30, 0], [3, 1, 3, 0]],
    ]
    .into_iter()
    .enumerate()
    {
        let n = tok.len();
        let width = (hq + 2 * hkv) * d;
        let qkv = random_vec(&mut rng, n * width, 2.0);
        let want = rope_kv_ref(
            &qkv,
            &tok,
            &rope,
            &layout,
            [hq, hkv, d],
            storage,
            &mut k_cache,
            &mut v_cache,
        );
        let qkv_d = DevMem::upload(&s, &qkv, StorageType::F32, "qkv")?;
        let mut tok_d = DevMem::alloc(&s, 16 * n, "tok")?;
        tok_d.write(&s, tok.as_flattened())?;
        let q_d = DevMem::alloc(&s, n * hq * d * e, "q")?;
        let k_d = DevMem::alloc(&s, n * hkv * d * e, "k")?;
        let v_d = DevMem::alloc(&s, n * hkv * d * e, "v")?;
        unsafe {
            ops.rope_kv(
                &s,
                qkv_d.ptr,
                tok_d.ptr,
                rope_d.ptr,
                seg_d.ptr,
                [q_d.ptr, k_d.ptr, v_d.ptr],
                [kc_d.ptr, vc_d.ptr],
                n as u32,
                [hq as u32, hkv as u32, d as u32],
                layout.row_slots,
            )
        }?;
        let name = if pass == 0 { "prefill" } else { "decode" };
        for (what, got, want) in [
            ("q", q_d.download(&s, n * hq * d, storage)?, &want.q),
            ("k", k_d.download(&s, n * hkv * d, storage)?, &want.k),
            ("v", v_d.download(&s, n * hkv * d, storage)?, &want.v),
            (
                "k cache",
                kc_d.download(&s, cache_len, storage)?,
                &want.k_cache,
            ),
            (
                "v cache",
                vc_d.download(&s, cache_len, storage)?,
                &want.v_cache,
            ),
        ] {
            out.push(compare(&format!("rope_kv {name} {what}"), &got, want, tol));
        }
        if pass == 0 {
            // The prefill pass again as the engine runs it, moa_rope_qk and moa_v_write with
            // the f16 copy and the maxima (where the layer's prefill takes them,
            // Arg::VF16), into fresh caches: the same values and slots, and the copy and
            // maxima of v_write_ref (the maxima exact in bf16 storage).
            let kc2 = DevMem::zeros(&s, cache_len * e, "k cache")?;
            let vc2 = DevMem::zeros(&s, cache_len * e, "v cache")?;
            let v16_d = DevMem::zeros(&s, n * hkv * d * 2, "f16 copy of v")?;
            let vmax_d = DevMem::zeros(&s, hkv * 4, "v maxima")?;
            unsafe {
                ops.rope_qk(
                    &s,
                    qkv_d.ptr,
                    tok_d.ptr,
                    rope_d.ptr,
                    seg_d.ptr,
                    [q_d.ptr, k_d.ptr],
                    kc2.ptr,
                    n as u32,
                    [hq as u32, hkv as u32, d as u32],
                    layout.row_slots,
                )?;
                ops.v_write(
                    &s,
                    qkv_d.ptr,
                    tok_d.ptr,
                    seg_d.ptr,
                    v_d.ptr,
                    vc2.ptr,
                    [v16_d.ptr, vmax_d.ptr],
                    n as u32,
                    [hq as u32, hkv as u32, d as u32],
                    layout.row_slots,
                )?;
            }
            for (what, got, want) in [
                ("q", q_d.download(&s, n * hq * d, storage)?, &want.q),
                ("k", k_d.download(&s, n * hkv * d, storage)?, &want.k),
                ("v", v_d.download(&s, n * hkv * d, storage)?, &want.v),
                (
                    "k cache",
                    kc2.download(&s, cache_len, storage)?,
                    &want.k_cache,
                ),
                (
                    "v cache",
                    vc2.download(&s, cache_len, storage)?,
                    &want.v_cache,
                ),
            ] {
                out.push(compare(
                    &format!("rope_qk + v_write {what}"),
                    &got,
                    want,
                    tol,
                ));
            }
            let (copy, max) = v_write_ref(&want.v, hkv, d);
            let f = |b: &[u16]| -> Vec<f32> {
                b.iter()
                    .map(|&x| half::f16::from_bits(x).to_f32())
                    .collect()
            };
            out.push(compare(
                "v_write f16 copy",
                &f(&v16_d.read::<u16>(&s, n * hkv * d)?),
                &f(&copy),
                0.0,
            ));
            if storage == StorageType::Bf16 {
                let got: Vec<f32> = vmax_d
                    .read::<u32>(&s, hkv)?
                    .iter()
                    .map(|&x| x as f32)
                    .collect();
                let want: Vec<f32> = max.iter().map(|&x| x as f32).collect();
                out.push(compare("v_write maxima (bf16 bits)", &got, &want, 0.0));
            }
        }
    }

    // SwiGLU.
    let ffn = 300usize;
    let gu = random_vec(&mut rng, 4 * 2 * ffn, 4.0);
    let gu_d = DevMem::upload(&s, &gu, StorageType::F32, "gate_up")?;
    let a_d = DevMem::alloc(&s, 4 * ffn * e, "act")?;
    unsafe { ops.swiglu(&s, gu_d.ptr, a_d.ptr, 4, ffn as u32) }?;
    out.push(compare(
        "swiglu",
        &a_d.download(&s, 4 * ffn, storage)?,
        &swiglu_ref(&gu, ffn),
        tol,
    ));

    // RMSNorm fused with a projection (QKV) and with gate/up + SwiGLU: 17 rows (16 and the
    // decode spare row) of hidden 200 (not a multiple of the warp), 75 and 2 x 45 outputs
    // (not multiples of the block's 8).
    let (rows_n, hidden, n_out) = (17usize, 200usize, 75usize);
    let x = random_vec(&mut rng, rows_n * hidden, 3.0);
    let nw = random_vec(&mut rng, hidden, 1.0);
    let x_d = DevMem::upload(&s, &x, StorageType::F32, "x")?;
    let nw_d = DevMem::upload(&s, &nw, StorageType::F32, "norm weight")?;
    for (name, swiglu, rows_w) in [
        ("norm_gemv qkv", false, n_out),
        ("norm_gemv swiglu", true, 90),
    ] {
        let w: Vec<f32> = random_vec(&mut rng, rows_w * hidden, 0.1)
            .into_iter()
            .map(|v| round(v, storage))
            .collect();
        let w_d = DevMem::upload(&s, &w, storage, "w")?;
        let outs = if swiglu { rows_w / 2 } else { rows_w };
        let o_bytes = if swiglu { e } else { 4 };
        let o_d = DevMem::alloc(&s, rows_n * outs * o_bytes, "out")?;
        unsafe {
            ops.norm_gemv(
                &s,
                x_d.ptr,
                nw_d.ptr,
                w_d.ptr,
                o_d.ptr,
                rows_n as u32,
                hidden as u32,
                outs as u32,
                1e-5,
                swiglu,
            )
        }?;
        let got = if swiglu {
            o_d.download(&s, rows_n * outs, storage)?
        } else {
            o_d.read::<f32>(&s, rows_n * outs)?
        };
        // The f32 sums may round h to the other side of a storage step than the reference's
        // f64: allow the storage type's tolerance, and 1e-4 in f32.
        let t = if storage == StorageType::F32 {
            1e-4
        } else {
            tol
        };
        out.push(compare(
            name,
            &got,
            &norm_gemv_ref(&x, &nw, &w, 1e-5, storage, swiglu),
            t,
        ));
    }

    // Argmax (a tie: the first index wins) and sampling, 4 rows of 5000 logits.
    let vocab = 5000usize;
    let mut logits = random_vec(&mut rng, 4 * vocab, 4.0);
    logits[vocab + 17] = 9.0;
    logits[vocab + 4000] = 9.0;
    let l_d = DevMem::upload(&s, &logits, StorageType::F32, "logits")?;
    let uni: Vec<f32> = (0..4).map(|_| rng.random::<f32>()).collect();
    let u_d = DevMem::upload(&s, &uni, StorageType::F32, "uniforms")?;
    let t_d = DevMem::alloc(&s, 16, "tokens")?;
    for (name, temp, top_p, top_k) in [
        ("argmax", 0.0f32, 1.0f32, 0u32),
        ("sample t=0.8", 0.8, 1.0, 0),
        ("sample t=1 top_p=0.9", 1.0, 0.9, 0),
        ("sample t=2 top_k=20", 2.0, 1.0, 20),
        ("sample t=2 top_k=50 top_p=0.5", 2.0, 0.5, 50),
    ] {
        unsafe {
            ops.choose(
                &s,
                l_d.ptr,
                u_d.ptr,
                t_d.ptr,
                4,
                vocab as u32,
                temp,
                top_p,
                top_k,
            )
        }?;
        let got = t_d.read::<u32>(&s, 4)?;
        let want: Vec<u32> = logits
            .chunks(vocab)
            .zip(&uni)
            .map(|(r, &u)| sample_ref(r, temp, top_p, top_k, u))
            .collect();
        // f32 on the device vs f64 here: a draw may land next to a boundary, so a
        // neighbouring kept token counts as equal for sampling (never for argmax).
        let mismatches = got
            .iter()
            .zip(&want)
            .filter(|(a, b)| a != b && (temp == 0.0 || a.abs_diff(**b) > vocab as u32 / 50))
            .count();
        out.push(OpResult {
            name: format!("{name} (tokens {got:?}, reference {want:?})"),
            max_error: mismatches as f32,
            tolerance: 0.0,
            passed: mismatches == 0,
        });
    }

    // Random fill: the device's numbers are the host's.
    let n = 1000u64;
    let r_d = DevMem::alloc(&s, 4 * n as usize, "random")?;
    unsafe { ops.fill_random(&s, r_d.ptr, n, 42, 0.5, 0.25, true) }?;
    let want: Vec<f32> = (0..n).map(|i| 0.25 + 0.5 * random_value(42, i)).collect();
    out.push(compare(
        "fill_random",
        &r_d.read::<f32>(&s, n as usize)?,
        &want,
        1e-6,
    ));

    // Copy.
    let src: Vec<u32> = (0..4096).map(|_| rng.random()).collect();
    let mut src_d = DevMem::alloc(&s, 4 * src.len(), "src")?;
    src_d.write(&s, &src)?;
    let dst_d = DevMem::zeros(&s, 4 * src.len(), "dst")?;
    unsafe { ops.copy(&s, src_d.ptr, dst_d.ptr, 4 * src.len() as u64) }?;
    let same = dst_d.read::<u32>(&s, src.len())? == src;
    out.push(OpResult {
        name: "copy".into(),
        max_error: if same { 0.0 } else { 1.0 },
        tolerance: 0.0,
        passed: same,
    });
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lower::Segment;

    /// The cache write's half of the `u` pre-pass (`v_write_ref`, what `moa_v_write` and
    /// `_vcvt` write): f16(v) at scale 1, overflowing to infinity above f16's range (the
    /// case `_vfix` converts again), and per KV head the largest |v| as bf16 bits, signs
    /// ignored, heads told apart by position (`[token, kv_head, head_dim]`).
    #[test]
    fn v_write_ref_gives_the_unit_copy_and_the_bf16_maxima() {
        // 2 tokens x 2 KV heads x head_dim 2.
        let v = [0.5, -3.0, 1.0, 0.25, -7.5, 2.0, 70000.0, -1.0];
        let v: Vec<f32> = v.iter().map(|&x| round(x, StorageType::Bf16)).collect();
        let (copy, max) = v_write_ref(&v, 2, 2);
        let bf = |x: f32| u32::from(half::bf16::from_f32(x).to_bits());
        assert_eq!(max, vec![bf(7.5), bf(v[6])]);
        assert_eq!(copy[1], half::f16::from_f32(-3.0).to_bits());
        assert_eq!(copy[6], half::f16::INFINITY.to_bits());
        assert_eq!(copy.len(), v.len());
    }

    #[test]
    fn rope_kv_ref_keeps_the_newest_token_of_each_ring_slot() {
        // One KV head, span 5 = sink 2 + ring 3; a prefill of 9 tokens wraps the ring twice.
        let layout = CacheLayout {
            n_tokens: 9,
            segments: vec![Segment {
                offset: 0,
                span: 5,
                sink: 2,
                ring: 3,
            }],
            row_slots: 5,
        };
        let d = 2;
        // q, k, v of token p all equal p (RoPE at angle 0 for pair 0 when theta is huge).
        let qkv: Vec<f32> = (0..9).flat_map(|p| [p as f32, 0.0].repeat(3)).collect();
        let tok: Vec<[u32; 4]> = (0..9).map(|p| [p, 0, 8, 0]).collect();
        let rope = vec![[1.0, 0.0]; 9];
        let (mut kc, mut vc) = (vec![-1.0; 10], vec![-1.0; 10]);
        let out = rope_kv_ref(
            &qkv,
            &tok,
            &rope,
            &layout,
            [1, 1, d],
            StorageType::F32,
            &mut kc,
            &mut vc,
        );
        // sink: tokens 0, 1; ring slots hold 6, 7, 8 at (p - 2) % 3 = 1, 2, 0.
        let slots: Vec<f32> = out.v_cache.chunks(2).map(|c| c[0]).collect();
        assert_eq!(slots, vec![0.0, 1.0, 8.0, 6.0, 7.0]);
        for p in 0..9u64 {
            let s = layout.slot_of(0, p).unwrap() as usize;
            assert!(p < 6 || slots[s] == p as f32);
        }
    }

    #[test]
    fn sampling_reference_is_greedy_at_zero_temperature_and_inside_the_nucleus() {
        let logits = [0.0, 5.0, 1.0, 5.0, -3.0];
        assert_eq!(sample_ref(&logits, 0.0, 1.0, 0, 0.3), 1);
        for u in [0.0, 0.2, 0.5, 0.99] {
            // top_p 0.5: only the two tied leaders are kept.
            let t = sample_ref(&logits, 1.0, 0.5, 0, u);
            assert!(t == 1 || t == 3, "{t}");
        }
        // u near 1 with everything kept reaches the last token's share.
        assert_eq!(sample_ref(&logits, 100.0, 1.0, 0, 0.999), 4);
    }

    /// Top-k keeps the k largest logits (and ties with the k-th), whatever their sign,
    /// and k = 1 is greedy; `order_key` orders floats as they compare.
    #[test]
    fn sampling_reference_keeps_the_top_k() {
        let xs = [-3.5f32, -0.0, 0.0, -1e-30, 1e-30, 2.0, -f32::MAX, f32::MAX];
        for a in xs {
            for b in xs {
                if a < b {
                    assert!(order_key(a) < order_key(b), "{a} {b}");
                }
            }
        }
        let logits = [0.5, -2.0, 3.0, -0.25, 2.5, -7.0, 1.0, 2.5];
        assert_eq!(top_k_cut(&logits, 0), 0);
        assert_eq!(top_k_cut(&logits, 8), 0);
        assert_eq!(top_k_cut(&logits, 1), order_key(3.0));
        // The 2nd and 3rd largest are tied at 2.5: both stay in with k = 2.
        assert_eq!(top_k_cut(&logits, 2), order_key(2.5));
        assert_eq!(top_k_cut(&logits, 5), order_key(0.5));
        assert_eq!(top_k_cut(&logits, 6), order_key(-0.25));
        for i in 0..200 {
            let u = i as f32 / 200.0;
            let t = sample_ref(&logits, 100.0, 1.0, 3, u);
            assert!([2, 4, 7].contains(&t), "{t}");
            let t = sample_ref(&logits, 100.0, 1.0, 6, u);
            assert!(logits[t as usize] >= -0.25, "{t}");
            assert_eq!(sample_ref(&logits, 100.0, 1.0, 1, u), 2);
        }
    }

    #[test]
    fn random_values_are_uniform_in_the_unit_interval() {
        let v: Vec<f32> = (0..10_000).map(|i| random_value(7, i)).collect();
        assert!(v.iter().all(|&x| (-1.0..1.0).contains(&x)));
        let mean = v.iter().sum::<f32>() / v.len() as f32;
        assert!(mean.abs() < 0.03, "{mean}");
        assert_ne!(random_value(7, 0), random_value(8, 0));
    }

    #[test]
    fn swiglu_and_rmsnorm_references() {
        let s = swiglu_ref(&[0.0, 1.0, 2.0, 3.0], 2);
        assert_eq!(s[0], 0.0);
        assert!((s[1] - 1.0 / (1.0 + (-1f32).exp()) * 3.0).abs() < 1e-6);
        let n = rmsnorm_ref(&[3.0, 4.0], &[0], &[1.0, 2.0], 0.0);
        let r = (12.5f32).sqrt();
        assert!((n[0] - 3.0 / r).abs() < 1e-6 && (n[1] - 8.0 / r).abs() < 1e-6);
    }

    #[test]
    fn norm_gemv_reference_is_the_norm_then_the_projection() {
        let r = (12.5f32).sqrt();
        let (h0, h1) = (3.0 / r, 4.0 / r);
        // Identity projection: the normalized row itself.
        let y = norm_gemv_ref(
            &[3.0, 4.0],
            &[1.0, 1.0],
            &[1.0, 0.0, 0.0, 1.0],
            0.0,
            StorageType::F32,
            false,
        );
        assert!(
            (y[0] - h0).abs() < 1e-6 && (y[1] - h1).abs() < 1e-6,
            "{y:?}"
        );
        // Gate = h0, up = h1.
        let y = norm_gemv_ref(
            &[3.0, 4.0],
            &[1.0, 1.0],
            &[1.0, 0.0, 0.0, 1.0],
            0.0,
            StorageType::F32,
            true,
        );
        assert_eq!(y.len(), 1);
        assert!((y[0] - h0 / (1.0 + (-h0).exp()) * h1).abs() < 1e-6, "{y:?}");
        // bf16 storage rounds the normalized row before the product, as moa_rmsnorm stores it.
        let y = norm_gemv_ref(
            &[3.0, 4.0],
            &[1.0, 1.0],
            &[1.0, 0.0, 0.0, 1.0],
            0.0,
            StorageType::Bf16,
            false,
        );
        assert_eq!(y[0], round(h0, StorageType::Bf16));
    }
}
