/* Monte Carlo kernels with 4 paths per vector, compiled once per arm64
 * variant. */
#define OT_MC_VW 4
#define OT_MCFN(name) OT_PASTE(name, OT_ISA_SUFFIX)
#include "ot_montecarlo_impl.h"
