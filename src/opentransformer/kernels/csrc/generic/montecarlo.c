/* Monte Carlo kernels for any CPU, at the SSE2 / NEON baseline width. */
#define OT_MC_VW 4
#define OT_MCFN(name) name##_generic
#include "ot_montecarlo_impl.h"
