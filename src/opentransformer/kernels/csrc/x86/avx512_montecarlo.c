/* Monte Carlo kernels with 16 paths per vector, compiled once per AVX-512
 * variant. */
#define OT_MC_VW 16
#define OT_MCFN(name) OT_PASTE(name, OT_ISA_SUFFIX)
#include "ot_montecarlo_impl.h"
