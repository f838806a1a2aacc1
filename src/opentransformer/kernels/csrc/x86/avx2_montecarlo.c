/* Monte Carlo kernels with 8 paths per vector. */
#define OT_MC_VW 8
#define OT_MCFN(name) OT_PASTE(name, OT_ISA_SUFFIX)
#include "ot_montecarlo_impl.h"
