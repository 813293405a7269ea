//! wgpu executor for the generated WGSL kernels (in progress).
