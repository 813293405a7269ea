# Compiles every OUT/cuda/*.cu with NVRTC as docs/EMBEDDING.md ("CUDA specifics") says:
# sm_90a, --std=c++17, the CUDA headers' folder on the include path. Needs
# `source /work/cuda-env.sh` (LD_LIBRARY_PATH with libnvrtc, MOA_CUDA_INCLUDE).
# Usage: python3 nvrtc.py OUT [OUT ...]; prints one line per file, exit 1 on any failure.
import ctypes, glob, os, sys
lib = ctypes.CDLL("libnvrtc.so.12")
inc = os.environ["MOA_CUDA_INCLUDE"]
bad = 0
for out in sys.argv[1:]:
    for cu in sorted(glob.glob(os.path.join(out, "cuda", "*.cu"))):
        src = open(cu, "rb").read()
        prog = ctypes.c_void_p()
        assert lib.nvrtcCreateProgram(ctypes.byref(prog), src, cu.encode(), 0, None, None) == 0
        opts = [b"--gpu-architecture=sm_90a", b"--std=c++17", b"-I" + inc.encode()]
        arr = (ctypes.c_char_p * len(opts))(*opts)
        rc = lib.nvrtcCompileProgram(prog, len(opts), arr)
        size = ctypes.c_size_t()
        lib.nvrtcGetProgramLogSize(prog, ctypes.byref(size))
        log = ctypes.create_string_buffer(size.value)
        lib.nvrtcGetProgramLog(prog, log)
        ptx = ctypes.c_size_t()
        lib.nvrtcGetPTXSize(prog, ctypes.byref(ptx))
        print(f"{'ok ' if rc == 0 else 'FAIL'} {cu} ({len(src)} bytes -> {ptx.value} bytes of PTX)")
        if rc != 0:
            bad += 1
            print(log.value.decode()[:2000])
        lib.nvrtcDestroyProgram(ctypes.byref(prog))
sys.exit(1 if bad else 0)
