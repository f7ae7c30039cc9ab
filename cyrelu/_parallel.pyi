# Type stub for the compiled module cyrelu/_parallel.pyx (the thread-count authority).
from typing import TypedDict

class _BuildInfo(TypedDict):
    compiler: str
    simd: list[str]
    openmp: int
    isa: str
    isa_request: str | None
    fork_child: bool

ISA_ACCEPTED: tuple[str, ...]

def effective_n_threads(num_threads: int | None = None) -> int: ...
def openmp_version() -> int: ...
def build_info() -> _BuildInfo: ...
def isa_request() -> str | None: ...
def is_fork_child() -> bool: ...
