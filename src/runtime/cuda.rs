//! CUDA executor for the generated CUDA kernels: cudarc + NVRTC (in progress).
