// Loops marked CAVIAR_VECTOR_CLONES are compiled once per instruction set and picked at load
// time (GCC's target_clones): with AVX-512 they run 16 floats (8 doubles) at a time, about four
// times the baseline SSE2 build, and the addon still loads on any x86-64.
#pragma once

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define CAVIAR_VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define CAVIAR_VECTOR_CLONES
#endif
