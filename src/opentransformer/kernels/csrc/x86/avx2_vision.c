/* Vision kernels with 8-lane vectors: a 3 x 32 GEMM microkernel keeps 12 of
 * the 16 ymm registers as accumulators. */
#define OT_VW 8
#define OT_MR 3
#define OT_ATT_QB 2
#define OT_ATT_JB 4
#define OT_ATT_HV 4
#define OT_VFN_PASTE(name, isa) ot_vision_##name##_##isa
#define OT_VFN_EXPAND(name, isa) OT_VFN_PASTE(name, isa)
#define OT_VFN(name) OT_VFN_EXPAND(name, OT_ISA_SUFFIX)
#include "ot_vision_impl.h"
