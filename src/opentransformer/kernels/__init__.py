"""Native SIMD kernels behind one op set; `reference` holds the numpy truth for each op."""
