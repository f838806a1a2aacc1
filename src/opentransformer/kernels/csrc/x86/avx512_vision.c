/* Vision kernels with 16-lane vectors: a 12 x 32 GEMM microkernel keeps 24 of
 * the 32 zmm registers as accumulators. Compiled once per AVX-512 variant. */
#define OT_VW 16
#define OT_MR 12
#define OT_ATT_QB 4
#define OT_ATT_JB 4
#define OT_ATT_HV 4
#define OT_VFN_PASTE(name, isa) ot_vision_##name##_##isa
#define OT_VFN_EXPAND(name, isa) OT_VFN_PASTE(name, isa)
#define OT_VFN(name) OT_VFN_EXPAND(name, OT_ISA_SUFFIX)
#include "ot_vision_impl.h"
