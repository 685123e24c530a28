import os

# Whisper runs int8 through oneDNN, whose kernels differ by CPU generation: with AVX-512 (VNNI)
# the beams differ from AVX2 (on an AMD EPYC with AVX-512, base heard "noxicillin" for
# doxycycline and a 1 s overlap kept "and" twice). The real-model tests assert what the model
# hears, so they pin oneDNN to AVX2, which every x86-64 CI machine has; here, in the package
# every test module and conftest imports first (also with --confcutdir=tests/speech), before
# anything loads it; the worker processes the tests start inherit it. docs/speech.md.
os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX2")
