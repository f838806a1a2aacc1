/* LLM kernels for AVX2 + FMA + F16C (see x86_kernels.h). */
#include "x86_kernels.h"
