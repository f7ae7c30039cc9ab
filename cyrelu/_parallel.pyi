# Type stub for the compiled module cyrelu/_parallel.pyx (the thread-count authority).
from typing import TypedDict

class _BuildInfo(TypedDict):
    compiler: str
    simd: list[str]
    openmp: int
    isa: str

def effective_n_threads(num_threads: int | None = None) -> int: ...
def openmp_version() -> int: ...
def build_info() -> _BuildInfo: ...
