//! Weight upload: the model's tensors in device buffers, in the layout the ops read (Q, K
//! and V stacked into one product, gate and up into another).

use wgpu::util::DeviceExt;

use super::EngineError;
use crate::lower::StorageType;
use crate::model::Weights;
use crate::runtime::wgpu::tensor_bytes;

/// One decoder block's weights on the device.
pub(super) struct LayerBuffers {
    pub(super) attn_norm: wgpu::Buffer,
    /// `[(q_heads + 2 kv_heads) * head_dim, hidden]`: q, k, v projections stacked.
    pub(super) wqkv: wgpu::Buffer,
    pub(super) wo: wgpu::Buffer,
    pub(super) ffn_norm: wgpu::Buffer,
    /// `[2 ffn, hidden]`: gate then up, so one linear feeds SwiGLU.
    pub(super) w_gate_up: wgpu::Buffer,
    pub(super) w_down: wgpu::Buffer,
}

/// Every weight of a model on the device.
pub(super) struct DeviceWeights {
    /// `[vocab, hidden]`, in the storage type.
    pub(super) embed: wgpu::Buffer,
    /// `[vocab, hidden]`; `None`: tied to `embed`.
    pub(super) lm_head: Option<wgpu::Buffer>,
    /// `[hidden]`, f32.
    pub(super) output_norm: wgpu::Buffer,
    pub(super) layers: Vec<LayerBuffers>,
    /// Bytes of all of them.
    pub(super) bytes: u64,
}

impl DeviceWeights {
    /// Uploads `w`: matrices in `storage`, norms in f32. A tensor above the adapter's
    /// storage binding limit (`max_binding` bytes) is [`EngineError::TooLarge`], naming it.
    pub(super) fn upload(
        device: &wgpu::Device,
        w: &Weights,
        storage: StorageType,
        max_binding: u64,
    ) -> Result<DeviceWeights, EngineError> {
        let mut weight_bytes = 0u64;
        let mut upload = |name: &str, data: &[f32], t: StorageType| {
            let bytes = tensor_bytes(data, t);
            weight_bytes += bytes.len() as u64;
            if bytes.len() as u64 > max_binding {
                return Err(EngineError::TooLarge {
                    name: name.to_string(),
                    bytes: bytes.len() as u64,
                    limit: max_binding,
                });
            }
            Ok(
                device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                    label: Some(name),
                    contents: &bytes,
                    usage: wgpu::BufferUsages::STORAGE,
                }),
            )
        };
        let embed = upload("token_embd", &w.token_embd.data, storage)?;
        let lm_head = match &w.output {
            Some(t) => Some(upload("output", &t.data, storage)?),
            None => None,
        };
        let output_norm = upload("output_norm", &w.output_norm.data, StorageType::F32)?;
        let mut layers = Vec::new();
        for (i, l) in w.layers.iter().enumerate() {
            let cat = |a: &[f32], b: &[f32], c: &[f32]| [a, b, c].concat();
            layers.push(LayerBuffers {
                attn_norm: upload(
                    &format!("blk.{i}.attn_norm"),
                    &l.attn_norm.data,
                    StorageType::F32,
                )?,
                wqkv: upload(
                    &format!("blk.{i}.attn_qkv"),
                    &cat(&l.attn_q.data, &l.attn_k.data, &l.attn_v.data),
                    storage,
                )?,
                wo: upload(
                    &format!("blk.{i}.attn_output"),
                    &l.attn_output.data,
                    storage,
                )?,
                ffn_norm: upload(
                    &format!("blk.{i}.ffn_norm"),
                    &l.ffn_norm.data,
                    StorageType::F32,
                )?,
                w_gate_up: upload(
                    &format!("blk.{i}.ffn_gate_up"),
                    &cat(&l.ffn_gate.data, &l.ffn_up.data, &[]),
                    storage,
                )?,
                w_down: upload(&format!("blk.{i}.ffn_down"), &l.ffn_down.data, storage)?,
            });
        }
        Ok(DeviceWeights {
            embed,
            lm_head,
            output_norm,
            layers,
            bytes: weight_bytes,
        })
    }
}
