/* Vision kernels with 4-lane vectors: 32 vector registers hold a 3 x 32
 * GEMM tile (24 accumulators) with room for the panel row and the broadcast
 * activations. Compiled once per arm64 variant. */
#define OT_VW 4
#define OT_MR 3
#define OT_ATT_QB 4
#define OT_ATT_JB 4
#define OT_ATT_HV 4
#define OT_VFN_PASTE(name, isa) ot_vision_##name##_##isa
#define OT_VFN_EXPAND(name, isa) OT_VFN_PASTE(name, isa)
#define OT_VFN(name) OT_VFN_EXPAND(name, OT_ISA_SUFFIX)
#include "ot_vision_impl.h"
