"""Turn model files into weights the kernels can run."""
