/* LLM kernels for AVX-512 F/BW/VL/DQ, built once with and once without
 * VNNI (see x86_kernels.h). */
#include "x86_kernels.h"
